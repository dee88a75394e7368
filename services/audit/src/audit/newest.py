"""The newest entries of the log that match a filter, read through widening windows of time.

MongoDB answers "the newest 200 that match" by walking the ``ts_key`` index from its end and
stopping after 200. The embedded stand-in walks the whole index and decodes every entry before
it applies the limit, so a page of a long log cost the whole log (seconds, once a busy day's
access entries are in it). A lower bound on ``ts_key`` makes both servers read only that range:
the newest entries are looked for in the last ten minutes, then the last six hours, then the last
week, then everywhere. A window that holds a full page has every entry of the page (anything
outside it is older than everything in it); a short one costs one more query.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from registry_contract.documents import Document
from registry_contract.sortkeys import time_key

WINDOWS = (timedelta(minutes=10), timedelta(hours=6), timedelta(days=7))
_KEY_TIME = "%Y-%m-%dT%H:%M:%S.%f"
_KEY_TIME_LENGTH = len("2026-01-01T00:00:00.000000")


async def newest_first(log: AsyncCollection[Document], query: dict[str, Any], count: int) -> list[Document]:
    """Up to ``count`` entries matching ``query``, newest ``ts_key`` first."""
    bounds: dict[str, str] = query.get("ts_key", {})
    floor = bounds.get("$gte")
    end = _time_of(bounds.get("$lt")) or datetime.now(UTC)
    for window in WINDOWS:
        start = time_key(end - window, "")
        if floor is not None and start <= floor:
            break  # the query's own lower bound is narrower than this window
        windowed = {**query, "ts_key": {**bounds, "$gte": start}}
        docs = await log.find(windowed).sort("ts_key", -1).limit(count).to_list()
        if len(docs) >= count:
            return docs
    return await log.find(query).sort("ts_key", -1).limit(count).to_list()


def _time_of(key: str | None) -> datetime | None:
    """The instant a ``ts_key`` (or a cursor, which is one) starts with; ``None`` for anything else."""
    if key is None:
        return None
    try:
        return datetime.strptime(key[:_KEY_TIME_LENGTH], _KEY_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
