"""A page of the audit log read through widening windows of time is the page a plain sort gives.

The windows are there for the embedded stand-in, which decodes a whole index before it applies a
limit (``audit.newest`` says why); the answer must not depend on where the entries fall in time.
"""

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from audit.newest import WINDOWS, newest_first
from audit.storage import AUDIT_LOG
from audit.storage import INDEXES as AUDIT_INDEXES
from registry_contract.sortkeys import time_key
from shared.chassis.mongo import ensure_indexes

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
# Entries in the newest windows, in each wider one, and older than all of them.
AGES = (
    [timedelta(seconds=30 * i) for i in range(1, 16)]
    + [timedelta(hours=1, minutes=i) for i in range(40)]
    + [timedelta(days=2, minutes=i) for i in range(40)]
    + [timedelta(days=30, minutes=i) for i in range(60)]
    + [timedelta(days=100, minutes=i) for i in range(20)]
)


async def _log(db: AsyncDatabase[dict[str, Any]]) -> Any:
    await ensure_indexes(db, AUDIT_INDEXES, [AUDIT_LOG])
    docs = [
        {
            "_id": f"e{i:04d}",
            "chain": f"c{i % 3}",
            "seq": i,
            "team": "alpha" if i % 3 else "beta",
            "ts_key": time_key(NOW - age, f"e{i:04d}"),
        }
        for i, age in enumerate(AGES)
    ]
    await db[AUDIT_LOG].insert_many(docs)
    return db[AUDIT_LOG]


async def test_every_page_size_filter_and_cursor_gives_the_plain_sorts_page(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    assert WINDOWS[0] < timedelta(seconds=30) and timedelta(days=30) < WINDOWS[-1] < timedelta(days=100)
    log = await _log(mongo_database)
    cursor_in_the_second_window = time_key(NOW - timedelta(hours=1, minutes=20), "")
    queries: list[dict[str, Any]] = [
        {},
        {"team": "beta"},
        {"ts_key": {"$lt": cursor_in_the_second_window}},
        {"team": "alpha", "ts_key": {"$lt": cursor_in_the_second_window}},
        {"ts_key": {"$gte": time_key(NOW - timedelta(hours=3), "")}},  # narrower than the second window
        {"ts_key": {"$lt": "not a key"}},
        {"ts_key": {"$lt": "0001-01-01T00:00:00.000000 x"}},  # a cursor at the dawn of time
        {"team": "alpha", "type": "registry.access.read"},  # a rarer filter: not windowed
    ]
    for query in queries:
        for count in (1, 10, 15, 16, 56, 100, 500):
            plain = await log.find(query).sort("ts_key", -1).limit(count).to_list()
            for newest_written in (None, time_key(NOW - timedelta(days=2), ""), time_key(NOW, "~")):
                windowed = await newest_first(log, query, count, newest_written=newest_written)
                assert [d["_id"] for d in windowed] == [d["_id"] for d in plain], (query, count, newest_written)


class _Recording:
    """The log collection, remembering the filter of every ``find`` sent to it."""

    def __init__(self, log: Any) -> None:
        self.log, self.filters = log, list[dict[str, Any]]()

    def find(self, query: dict[str, Any]) -> Any:
        self.filters.append(query)
        return self.log.find(query)


async def test_a_page_of_recent_entries_reads_only_the_recent_ones(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    log = await _log(mongo_database)
    recording = _Recording(log)
    page = await newest_first(cast(Any, recording), {}, 10)
    assert len(page) == 10
    examined = 0
    for query in recording.filters:
        plan = await log.find(query).sort("ts_key", -1).limit(10).explain()
        examined += plan["executionStats"]["totalDocsExamined"]
    # The window that answers holds the 15 recent entries: the server read those (and the few of the
    # narrower windows before it), not the 175 of the whole log.
    assert examined <= 2 * 15, (examined, recording.filters)


async def test_a_burst_long_ago_is_paged_from_the_newest_entry_written_not_from_now(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    await ensure_indexes(mongo_database, AUDIT_INDEXES, [AUDIT_LOG])
    burst_end = NOW - timedelta(hours=1)
    docs = [
        {"_id": f"b{i:04d}", "chain": "c", "seq": i, "ts_key": time_key(burst_end - timedelta(milliseconds=10 * i), "")}
        for i in range(300)  # 300 entries in the 3 seconds before burst_end, nothing since
    ]
    await mongo_database[AUDIT_LOG].insert_many(docs)
    recording = _Recording(mongo_database[AUDIT_LOG])
    page = await newest_first(cast(Any, recording), {}, 10, newest_written=str(docs[0]["ts_key"]))
    assert [d["_id"] for d in page] == [f"b{i:04d}" for i in range(10)]
    examined = 0
    for query in recording.filters:
        plan = await mongo_database[AUDIT_LOG].find(query).sort("ts_key", -1).limit(10).explain()
        examined += plan["executionStats"]["totalDocsExamined"]
    # From now, the first window to reach back an hour holds the whole burst; from its newest entry,
    # the first window (a quarter of a second) holds 25 of it.
    assert examined < 100, (examined, recording.filters)
