"""``registry up`` on a data directory from before one database per service moves each collection to its owner."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from registry_cli.config import free_port
from registry_cli.processes import Child, wait_for_port
from registry_cli.shared_database import SHARED_DATABASE, adopt_shared_database

pytestmark = pytest.mark.integration
OWN = {"registration": "registration", "query": "query", "deploy-tracker": "deploy_tracker", "audit": "audit"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """A SecantusDB server of its own (the shared one's ``model_registry`` is not this test's to move)."""
    port = free_port()
    argv = [sys.executable, "-m", "registry_cli.embedded_mongo", "--transaction-lifetime-seconds", "10", "--"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--storage-path", str(tmp_path), "--log-level", "WARNING"]
    child = Child("adopt-mongo", argv, quiet=True)
    await child.start()
    connected: AsyncMongoClient[dict[str, Any]] | None = None
    try:
        await wait_for_port("127.0.0.1", port, timeout=60, process=child)
        connected = AsyncMongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false")
        yield connected
    finally:
        if connected is not None:
            await connected.close()
        await child.stop(grace=10)


async def test_each_collection_moves_to_its_owners_database_with_its_documents_and_indexes(
    client: AsyncMongoClient[dict[str, Any]],
) -> None:
    shared = client[SHARED_DATABASE]
    await shared.models.insert_many([{"_id": "m1", "team": "fraud", "name": "a"}, {"_id": "m2", "team": "fraud"}])
    await shared.models.create_index([("team", 1), ("name", 1)], name="team_name")
    await shared.console_sessions.insert_one({"_id": "s1"})
    await shared.audit_log.insert_one({"_id": "e1"})
    await shared.retired_things.insert_one({"_id": "x"})  # no service declares it: it stays
    await client["registration"].create_collection("api_keys")  # registration started once: empty
    await shared.api_keys.insert_one({"_id": "k1", "team": "platform"})
    await client["deploy_tracker"].deployments.insert_one({"_id": "new"})  # already written: never overwritten
    await shared.deployments.insert_one({"_id": "old"})

    report = await adopt_shared_database(client, OWN)

    assert sorted(report["moved"]) == [
        "model_registry.api_keys -> registration.api_keys",
        "model_registry.audit_log -> audit.audit_log",
        "model_registry.console_sessions -> query.console_sessions",
        "model_registry.models -> registration.models",
    ]
    assert report["left"] == ["model_registry.deployments"]
    assert await client["registration"].models.count_documents({}) == 2
    assert "team_name" in await client["registration"].models.index_information()
    assert await client["registration"].api_keys.find_one({"_id": "k1"}) is not None
    assert await client["deploy_tracker"].deployments.find().to_list() == [{"_id": "new"}]
    assert sorted(await shared.list_collection_names()) == ["deployments", "retired_things"]
    assert await adopt_shared_database(client, OWN) == {"moved": [], "left": ["model_registry.deployments"]}


async def test_nothing_moves_while_the_services_still_use_the_shared_database(
    client: AsyncMongoClient[dict[str, Any]],
) -> None:
    await client[SHARED_DATABASE].models.insert_one({"_id": "m1"})
    assert await adopt_shared_database(client, dict.fromkeys(OWN, SHARED_DATABASE)) == {"moved": [], "left": []}
    assert await adopt_shared_database(client, {"audit": "audit"}) == {"moved": [], "left": []}  # not audit's
    assert await client[SHARED_DATABASE].models.count_documents({}) == 1
