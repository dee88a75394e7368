"""The newest entries of the log that match a filter, read through widening windows of time.

MongoDB answers "the newest 50 that match" by walking the ``ts_key`` index from its end and
stopping after 50. The embedded stand-in walks the whole index and decodes every entry before
it applies the limit, so a page of a long log cost the whole log (seconds, once a busy day's
access entries are in it). A lower bound on ``ts_key`` makes both servers read only that range:
the newest entries are looked for in the quarter second before the newest entry this process
has written (or before the page's cursor, or now), then in the second, the 4 seconds, … before
it (each window four times the last, up to 48 days), then everywhere. A window that holds a full
page has every entry of the page (anything outside it is older than everything in it, and newer
entries are never excluded); a short one costs one more query, and all of them together read at
most about 4/3 of the window that answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from registry_contract.documents import Document
from registry_contract.sortkeys import time_key, time_of_key

WINDOWS = tuple(timedelta(seconds=0.25 * 4**power) for power in range(13))  # 0.25 s, 1 s, … 48 days
DENSE_FILTERS = frozenset({"team", "ts_key"})  # what a page is windowed for


async def newest_first(
    log: AsyncCollection[Document], query: dict[str, Any], count: int, *, newest_written: str | None = None
) -> list[Document]:
    """Up to ``count`` entries matching ``query``, newest ``ts_key`` first.

    ``newest_written`` is the ``ts_key`` of the newest entry this process wrote, if any: the log
    may hold newer ones (another replica's), which every window takes in too.
    """
    bounds: dict[str, str] = query.get("ts_key", {})
    floor = bounds.get("$gte")
    known = [time for key in (bounds.get("$lt"), newest_written) if key and (time := time_of_key(key))]
    end = min(known, default=datetime.now(UTC))
    # Windows pay off where matches are dense (the whole log, a team's part of it: both indexed with
    # the time). A rarer filter (a type, a principal) could fail every window and pay for each.
    windows = WINDOWS if set(query) <= DENSE_FILTERS else ()
    for window in windows:
        if end - datetime.min.replace(tzinfo=UTC) <= window:
            break  # a cursor at the dawn of time: nothing before it to window
        start = time_key(end - window, "")
        if floor is not None and start <= floor:
            break  # the query's own lower bound is narrower than this window
        windowed = {**query, "ts_key": {**bounds, "$gte": start}}
        docs = await log.find(windowed).sort("ts_key", -1).limit(count).to_list()
        if len(docs) >= count:
            return docs
    return await log.find(query).sort("ts_key", -1).limit(count).to_list()
