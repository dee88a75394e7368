"""The audit store's hash chains against MongoDB: exactly once, and tamper-evident."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from audit.entries import entry_for
from audit.store import AuditStore
from shared.auditchain import verify
from shared.mongo import ensure_indexes
from tests.factories import register_event
from tests.infra import Infra

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def entries(topic: str, partition: int, offsets: range) -> list[dict[str, object]]:
    return [
        entry_for(
            topic=topic,
            partition=partition,
            offset=o,
            event=register_event("fraud", f"m{o}"),
            error=None,
            received_at=NOW,
        )
        for o in offsets
    ]


@pytest.fixture
async def db(infra: Infra, db_name: str) -> AsyncIterator[object]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    await ensure_indexes(client[db_name])
    store = AuditStore(client, client[db_name])
    await store.append(entries("registry.commands", 0, range(0, 6)) + entries("registry.events", 1, range(0, 4)))
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()


async def test_a_redelivered_batch_is_appended_once(db) -> None:  # type: ignore[no-untyped-def]
    store = AuditStore(db.client, db)
    appended = await store.append(entries("registry.commands", 0, range(4, 9)))  # 4 and 5 are redeliveries
    assert [entry["offset"] for entry in appended] == [6, 7, 8]
    verdict = await verify(db)
    assert verdict.ok and verdict.entries == 13 and verdict.chains == 2


async def test_undecodable_records_are_audited_too(db) -> None:  # type: ignore[no-untyped-def]
    entry = entry_for(
        topic="registry.commands", partition=2, offset=0, event=None, error="not_json: x", received_at=NOW
    )
    assert entry["type"] == "undecodable" and entry["outcome"] == "dead_lettered"


async def test_editing_an_entry_is_found_at_that_entry(db) -> None:  # type: ignore[no-untyped-def]
    await db.audit_log.update_one({"_id": "registry.commands:0:3"}, {"$set": {"actor": "mallory"}})
    verdict = await verify(db)
    assert not verdict.ok and verdict.broken["entry_id"] == "registry.commands:0:3"
    assert "edited" in verdict.broken["problem"]


async def test_deleting_an_entry_is_found_where_it_was(db) -> None:  # type: ignore[no-untyped-def]
    await db.audit_log.delete_one({"_id": "registry.commands:0:2"})
    verdict = await verify(db)
    assert not verdict.ok and verdict.broken["chain"] == "registry.commands:0" and verdict.broken["seq"] == 3


async def test_deleting_the_last_entry_is_found_by_the_head(db) -> None:  # type: ignore[no-untyped-def]
    await db.audit_log.delete_one({"_id": "registry.events:1:3"})
    verdict = await verify(db)
    assert not verdict.ok and verdict.broken["chain"] == "registry.events:1"


async def test_swapping_two_entries_is_found_at_the_first(db) -> None:  # type: ignore[no-untyped-def]
    first = await db.audit_log.find_one({"_id": "registry.commands:0:1"})
    second = await db.audit_log.find_one({"_id": "registry.commands:0:2"})
    keep = ("_id", "seq", "offset", "prev_hash", "hash", "chain", "ts_key")
    await db.audit_log.update_one({"_id": first["_id"]}, {"$set": {k: v for k, v in second.items() if k not in keep}})
    await db.audit_log.update_one({"_id": second["_id"]}, {"$set": {k: v for k, v in first.items() if k not in keep}})
    verdict = await verify(db)
    assert not verdict.ok and verdict.broken["entry_id"] == "registry.commands:0:1"


async def test_an_untouched_log_verifies(db) -> None:  # type: ignore[no-untyped-def]
    verdict = await verify(db)
    assert verdict.ok and verdict.entries == 10


async def test_verify_ignores_entries_appended_after_it_read_the_heads(db) -> None:  # type: ignore[no-untyped-def]
    # Simulate a concurrent append: an entry beyond the head, as if written after the heads were read.
    head = await db.audit_heads.find_one({"_id": "registry.events:1"})
    await db.audit_heads.update_one(
        {"_id": head["_id"]},
        {"$set": {"seq": 3, "hash": (await db.audit_log.find_one({"chain": "registry.events:1", "seq": 3}))["hash"]}},
    )
    verdict = await verify(db)
    assert verdict.ok and verdict.entries == 9
