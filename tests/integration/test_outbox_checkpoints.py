"""A writer's own checkpoint: read from memory, stored at most once a second and at every heartbeat.

Storing it after every batch cost each registration one more durable update on the database
server; reading it before every batch, one more query. What a restart needs survives.
"""

import uuid
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from shared.outbox.log import MongoOutboxLog

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
