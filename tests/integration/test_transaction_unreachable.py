"""A transactional write with no database server to reach fails at once, not after two minutes.

The driver labels a server-selection failure inside a transaction as transient, and
``with_transaction`` retries such a transaction for two minutes: an HTTP write waited that long
(its client timed out) where a read before the transaction had answered 503 after the server
selection time-out.
"""

import asyncio
import time
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ServerSelectionTimeoutError

from registry_cli.config import free_port
from shared.chassis.consuming import is_transient
from shared.outbox.log import MongoOutboxLog

pytestmark = pytest.mark.integration
SELECTION_MS = 300


async def test_a_transaction_without_a_server_fails_after_the_server_selection_time_out() -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", serverSelectionTimeoutMS=SELECTION_MS
    )
    db = client["nowhere"]
    log = MongoOutboxLog(db["outbox"], db["relay_checkpoints"], writer="w")
    rows = [{"_id": "e1", "writer": "w"}]

    async def write(session: AsyncClientSession) -> None:
        await db["outbox"].insert_many(rows, session=session)

    started = time.monotonic()
    try:
        with pytest.raises(ServerSelectionTimeoutError) as raised:
            async with asyncio.timeout(20):  # retried, it would run for two minutes
                await log.commit_numbered(client, rows, write)
    finally:
        await client.close()
    assert time.monotonic() - started < 20
    assert is_transient(raised.value)  # still a dependency that is away: a 503, or a batch retried
    assert not raised.value.has_error_label("TransientTransactionError")
