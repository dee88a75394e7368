"""Team signing keys on a real MongoDB: concurrent adds neither trust a key twice nor go past the quota."""

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pymongo.asynchronous.database import AsyncDatabase

from registration.provenance import read_public_key
from registration.signing_keys import AlreadyTrusted, QuotaReached, SigningKeys
from registration.storage import INDEXES, OUTBOX, RELAY_CHECKPOINTS, SIGNING_KEYS
from registry_contract.auth import Principal
from registry_contract.signing_keys import SigningKeyCreate
from shared.chassis.mongo import ensure_indexes
from shared.outbox.changes import ChangeLog
from shared.outbox.log import MongoOutboxLog

pytestmark = pytest.mark.integration
ADMIN = Principal(key_id="adm00001", team="fraud", scopes=frozenset({"team:admin"}))


def pem() -> str:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
async def keys(mongo_database: AsyncDatabase[dict[str, Any]]) -> SigningKeys:
    await ensure_indexes(mongo_database, INDEXES, [SIGNING_KEYS, OUTBOX, RELAY_CHECKPOINTS])
    log = MongoOutboxLog(mongo_database[OUTBOX], mongo_database[RELAY_CHECKPOINTS], writer="w1")
    return SigningKeys(mongo_database[SIGNING_KEYS], ChangeLog(log, mongo_database.client, wake=lambda: None))


async def add(keys: SigningKeys, text: str, name: str, quota: int = 20) -> dict[str, Any] | Exception:
    body = SigningKeyCreate(name=name, public_key=text)
    try:
        return await keys.create("fraud", body, read_public_key(text), actor=ADMIN, quota=quota)
    except (AlreadyTrusted, QuotaReached) as refused:
        return refused


async def test_the_same_key_added_eight_times_at_once_is_trusted_once(keys: SigningKeys) -> None:
    text = pem()
    results = await asyncio.gather(*(add(keys, text, f"ci-{n}") for n in range(8)))
    assert sum(isinstance(result, dict) for result in results) == 1
    assert all(isinstance(result, (dict, AlreadyTrusted)) for result in results)
    assert len(await keys.of_team("fraud")) == 1


async def test_adds_racing_past_the_quota_stop_at_it_and_a_deleted_key_frees_its_slot(keys: SigningKeys) -> None:
    results = await asyncio.gather(*(add(keys, pem(), f"ci-{n}", quota=3) for n in range(8)))
    assert sum(isinstance(result, dict) for result in results) == 3
    live = await keys.of_team("fraud")
    assert len(live) == 3 and sorted(record["slot"] for record in live) == [0, 1, 2]
    await keys.delete(live[1], actor=ADMIN)
    again = await add(keys, pem(), "replacement", quota=3)
    assert isinstance(again, dict) and again["slot"] == live[1]["slot"]
    assert isinstance(await add(keys, pem(), "one-too-many", quota=3), QuotaReached)
