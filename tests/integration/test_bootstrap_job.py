"""``python -m shared.chassis.bootstrap`` (Compose and Kubernetes init job): idempotent; never re-enables keys."""

import asyncio
import os
import sys
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from registry_contract.auth import generate_api_key
from shared.chassis.bootstrap import store_bootstrap_key
from tests.infra import Infra

pytestmark = pytest.mark.integration


async def run_bootstrap(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.chassis.bootstrap",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def test_the_init_job_creates_topics_and_the_key_once_in_registrations_database(
    infra: Infra, mongo: AsyncMongoClient[dict[str, object]], db_name: str
) -> None:
    prefix = f"boot-{uuid.uuid4().hex[:6]}"
    key = generate_api_key()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "MONGODB_URI": infra.mongodb_uri,
        "REGISTRATION_MONGODB_DATABASE": db_name,
        "KAFKA_TOPIC_PARTITIONS": "2",
        "BOOTSTRAP_ADMIN_KEY": key.token,
        **{f"TOPIC_{name.upper()}": f"{prefix}.{name}" for name in ("commands", "events", "deploy", "access")},
    }
    code, output = await run_bootstrap(env)
    assert code == 0, output
    assert key.token not in output  # the secret is never echoed
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        topics = {t for t in await admin.list_topics() if t.startswith(prefix)}
    finally:
        await admin.close()
    assert len(topics) == 8 and f"{prefix}.commands.dlq" in topics
    db = mongo[db_name]
    assert set(await db.list_collection_names()) == {"api_keys"}  # indexes are each service's own, made at start
    stored = await db.api_keys.find_one({"_id": key.key_id})
    assert stored is not None and stored["team"] == "platform" and not stored["revoked"]

    await db.api_keys.update_one({"_id": key.key_id}, {"$set": {"revoked": True}})
    code, output = await run_bootstrap(env)  # every deploy runs it again
    assert code == 0, output
    assert (await db.api_keys.find_one({"_id": key.key_id}) or {})["revoked"] is True

    code, output = await run_bootstrap({**env, "BOOTSTRAP_ADMIN_KEY": "not-a-key"})
    assert code == 1 and "bootstrap failed" in output and "not-a-key" not in output
    await mongo.drop_database(db_name)


async def test_without_a_given_key_one_key_is_made_per_database_and_shown_once(
    mongo: AsyncMongoClient[dict[str, object]], db_name: str
) -> None:
    # `registry up` runs this on every start: each run must not mint another never-expiring platform:admin key.
    db = mongo[db_name]
    first = await store_bootstrap_key(db, None, created_by="registry up")
    second = await store_bootstrap_key(db, None, created_by="registry up")
    assert first is not None and second is None
    assert await db.api_keys.count_documents({"team": "platform"}) == 1
    await mongo.drop_database(db_name)


@pytest.mark.parametrize("secret", ["s" * 43, "ab" * 22, "0123" * 11])
async def test_a_given_key_whose_secret_is_not_random_is_refused(
    mongo: AsyncMongoClient[dict[str, object]], db_name: str, secret: str
) -> None:
    with pytest.raises(ValueError, match="not random enough"):
        await store_bootstrap_key(mongo[db_name], f"mr_abcdefgh_{secret}", created_by="test")
    assert await mongo[db_name].api_keys.count_documents({}) == 0
