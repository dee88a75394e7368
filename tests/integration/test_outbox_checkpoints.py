"""A writer's own checkpoint and rows: read from memory, the checkpoint stored at most once a second.

Storing it after every batch cost each registration one more durable update on the database
server; reading it before every batch, one more query. What a restart needs survives.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from registry_contract.envelope import CloudEvent
from shared.outbox import log as outbox_log
from shared.outbox.log import MongoOutboxLog
from shared.outbox.rows import event_from_outbox, outbox_row

pytestmark = pytest.mark.integration


async def stored(db: AsyncDatabase[dict[str, Any]], writer: str) -> int:
    doc = await db["relay_checkpoints"].find_one({"_id": writer})
    return int(doc["seq"]) if doc else 0


async def test_the_own_checkpoint_is_stored_once_a_second_and_at_each_heartbeat(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    writer = f"w-{uuid.uuid4().hex[:6]}"
    log = MongoOutboxLog(mongo_database["outbox"], mongo_database["relay_checkpoints"], writer=writer)
    await log.register_writer()
    await log.advance(writer, 3)
    await log.advance(writer, 7)  # within the second: kept in memory only
    assert await stored(mongo_database, writer) == 3
    await mongo_database["outbox"].insert_many([{"writer": writer, "seq": seq} for seq in range(1, 10)])
    # The relay reads after its own position in memory, not the stored one.
    assert [row["seq"] for row in await log.pending(writer, 10)] == [8, 9]
    await log.advance(writer, 0)  # the heartbeat stores what was published
    assert await stored(mongo_database, writer) == 7


async def test_another_writers_checkpoint_is_stored_at_once(mongo_database: AsyncDatabase[dict[str, Any]]) -> None:
    # Adopting a dead writer's rows: its checkpoint is not this process's to keep in memory.
    log = MongoOutboxLog(mongo_database["outbox"], mongo_database["relay_checkpoints"], writer="alive")
    await log.advance("dead", 3)
    await log.advance("dead", 7)
    assert await stored(mongo_database, "dead") == 7


async def own_log(db: AsyncDatabase[dict[str, Any]]) -> MongoOutboxLog:
    """A fresh writer's log, registered as a relay registers it at start."""
    log = MongoOutboxLog(db["outbox"], db["relay_checkpoints"], writer=f"w-{uuid.uuid4().hex[:6]}")
    await log.register_writer()
    return log


async def commit(
    log: MongoOutboxLog, db: AsyncDatabase[dict[str, Any]], count: int = 1, *, rows: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Commit ``rows`` (else ``count`` bare ones) through ``log``, as a service's repository does."""
    rows = rows if rows is not None else [{"_id": uuid.uuid4().hex} for _ in range(count)]

    async def nothing_else(session: AsyncClientSession) -> None:
        return None

    await log.commit_with_rows(db.client, rows, nothing_else)
    return rows


async def drain(log: MongoOutboxLog) -> list[dict[str, Any]]:
    """Every row the relay would publish now, batch after batch, moving the checkpoint as it does."""
    published: list[dict[str, Any]] = []
    while rows := await log.pending(log.writer, 3):
        published += rows
        await log.advance(log.writer, rows[-1]["seq"])
    return published


async def test_the_relay_takes_this_writers_committed_rows_from_memory_without_reading_them_back(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    log = await own_log(mongo_database)
    writer = log.writer
    first, second = await commit(log, mongo_database, 3), await commit(log, mongo_database, 2)
    # Gone from the database behind the log's back: what the relay gets now can only come from memory.
    await mongo_database["outbox"].delete_many({"writer": writer})
    assert [row["_id"] for row in await log.pending(writer, 4)] == [row["_id"] for row in first + second][:4]
    await log.advance(writer, 4)
    assert [row["seq"] for row in await log.pending(writer, 10)] == [5]
    await log.advance(writer, 5)
    assert await log.pending(writer, 10) == []


async def test_rows_beyond_what_memory_keeps_are_read_from_the_database_in_order(
    mongo_database: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kafka away for long: memory keeps a bounded run; the relay reads the rest back, without a gap.
    monkeypatch.setattr(outbox_log, "COMMITTED_KEPT", 3)
    log = await own_log(mongo_database)
    writer = log.writer
    for _ in range(4):
        await commit(log, mongo_database, 2)  # 8 rows: the first 2 kept, then no room for a batch of 2 more
    assert [row["seq"] for row in await drain(log)] == list(range(1, 9))
    await commit(log, mongo_database, 1)  # caught up: kept in memory again
    await mongo_database["outbox"].delete_many({"writer": writer})
    assert [row["seq"] for row in await log.pending(writer, 3)] == [9]


async def test_a_row_from_memory_says_what_the_same_row_read_back_says(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    # A row published from memory and the same row published again from the database after a
    # crash carry one event: its time is kept to the millisecond BSON stores.
    log = await own_log(mongo_database)
    writer = log.writer
    event = CloudEvent(source="/t", type="t", data={}, time=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC))
    await commit(log, mongo_database, rows=[outbox_row(event, key="k", team="a", model_id=None)])
    [from_memory] = await log.pending(writer, 10)
    stored = await mongo_database["outbox"].find_one({"_id": event.id})
    assert stored is not None and from_memory["time"] == stored["time"] == datetime(2026, 1, 2, 3, 4, 5, 123000, UTC)
    assert event_from_outbox(from_memory).model_dump() == event_from_outbox(stored).model_dump()


async def test_after_a_commit_that_raised_the_relay_reads_its_numbers_back_from_the_database(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    # A commit whose result is unknown may have landed though it raised: its numbers are reused
    # by the next commit, and both rows must reach the relay, not only the one it kept.
    log = await own_log(mongo_database)
    writer = log.writer
    await commit(log, mongo_database, 1)

    async def lost_answer(session: AsyncClientSession) -> None:
        raise ConnectionError("the commit's answer was lost")

    with pytest.raises(ConnectionError):
        await log.commit_with_rows(mongo_database.client, [{"_id": "landed"}], lost_answer)
    # As if it had landed after all: the row is in the database under the number given back.
    await mongo_database["outbox"].insert_one({"_id": "landed", "writer": writer, "seq": 2})
    await commit(log, mongo_database, 1)  # numbered 2 as well
    published = [row["_id"] for row in await drain(log)]
    assert "landed" in published and len(published) == 3
    await commit(log, mongo_database, 1)  # past the unsure numbers: kept in memory again
    await mongo_database["outbox"].delete_many({"writer": writer})
    assert [row["seq"] for row in await log.pending(writer, 10)] == [3]
