"""The event log read in windows of time gives every published row, in position order, whatever the gaps."""

import random
import time
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from registration.storage import OUTBOX, create_indexes
from shared.outbox.reading import WindowedLog

pytestmark = pytest.mark.integration
SECOND = 10**9


def layout(now: int) -> list[int]:
    """Positions as writers make them: bursts a nanosecond apart, quiet days, a clock ahead."""
    rng = random.Random(23)
    start = now - 400 * 86_400 * SECOND  # a log begun more than a year ago
    positions = [start + i for i in range(40)]  # a burst
    positions += [start + 3 * SECOND + i * rng.randrange(1, 5_000_000) for i in range(60)]  # busy seconds
    positions += [start + 200 * 86_400 * SECOND + i * SECOND for i in range(25)]  # after 200 quiet days
    positions += [now - 300 * SECOND + i * 7 * SECOND for i in range(40)]  # the last minutes
    positions += [now + 2 * 3600 * SECOND + i for i in range(5)]  # a writer whose clock is hours ahead
    return sorted(set(positions))


async def test_paging_through_windows_gives_exactly_the_published_rows_in_order(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    await create_indexes(mongo_database)
    positions = layout(time.time_ns())
    parked = set(positions[5::17])
    rows = [{"_id": f"e{i}", "position": p, "type": "t", "data": {}} for i, p in enumerate(positions)]
    for row in rows:
        if row["position"] in parked:
            row["parked_reason"] = "too large"
    random.Random(5).shuffle(rows)  # commit order is not position order across writers
    await mongo_database[OUTBOX].insert_many(rows)
    published = [p for p in positions if p not in parked]
    log = WindowedLog(mongo_database[OUTBOX])

    for limit in (7, 1000):  # pages of 7 cross every gap and burst boundary; 1 took minutes
        read: list[int] = []
        after = 0
        while page := await log.rows_after(after, limit):
            assert len(page) <= limit
            read += [row["position"] for row in page]
            after = page[-1]["position"]
        assert read == published, limit

    # From the middle, as a catch-up re-reading the last five minutes does.
    middle = published[len(published) // 2]
    assert [row["position"] for row in await log.rows_after(middle, 1000)] == [p for p in published if p > middle]


async def test_an_empty_log_is_read_as_empty_and_read_again_once_it_has_rows(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    await create_indexes(mongo_database)
    log = WindowedLog(mongo_database[OUTBOX])
    assert await log.rows_after(0, 10) == []
    await mongo_database[OUTBOX].insert_one({"_id": "e1", "position": time.time_ns(), "type": "t", "data": {}})
    assert [row["_id"] for row in await log.rows_after(0, 10)] == ["e1"]
