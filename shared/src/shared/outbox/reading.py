"""An owner's event log read in position order a window at a time (``GET /internal/v1/events``).

The embedded stand-in materialises every row a query's range matches, whatever its limit, so
``position > after`` sorted with a limit costs the whole rest of the log: a rebuild from nothing
would read the log once per page. Positions are nanosecond times, so the log is read in bounded
windows of time instead: an empty window costs nothing, and each window is sized from the rows
the last one held, so a page reads about what it returns. The oldest position is found once per
process (one scan), so a read from the beginning does not cross decades of empty windows; a row
numbered later below it would take a writer's clock set back before the log began.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from registry_contract.documents import Document

SECOND = 10**9
FIRST_WINDOW = SECOND
MAX_WINDOW = 86_400 * SECOND  # a year without events costs a page 365 empty reads
MIN_WINDOW = 1000  # a microsecond: positions of one writer are at least a nanosecond apart
# Past this, one last unbounded read takes what a writer with a clock ahead may have numbered.
CLOCK_SLACK = 3600 * SECOND
PUBLISHED = {"parked_reason": {"$exists": False}}  # parked rows were never published


class WindowedLog:
    """Reads ``outbox`` rows after a position, oldest first, never leaving out a published row."""

    def __init__(self, outbox: AsyncCollection[Document]) -> None:
        self._outbox = outbox
        self._oldest: int | None = None  # the oldest position, once known (rows are never removed)

    async def rows_after(self, after: int, limit: int) -> list[Document]:
        """At most ``limit`` published rows with ``position > after``, by position."""
        oldest = await self._start()
        if oldest is None:  # nothing numbered yet: reading everything is reading nothing
            return await self._read({"$gt": after}, limit)
        low = max(after, oldest - 1)
        end = time.time_ns() + CLOCK_SLACK
        window, found = FIRST_WINDOW, list[Document]()
        while len(found) < limit and low < end:
            high = min(low + window, end)
            rows = await self._read({"$gt": low, "$lte": high}, limit - len(found))
            found += rows
            low = high
            # Aim the next window at about a page: wider while empty or sparse, narrower when dense.
            window = window * 4 if not rows else window * limit // (2 * len(rows))
            window = max(MIN_WINDOW, min(MAX_WINDOW, window))
        if len(found) < limit:
            found += await self._read({"$gt": low}, limit - len(found))
        return found

    async def _start(self) -> int | None:
        if self._oldest is None:
            oldest = await self._outbox.find_one({"position": {"$gte": 0}}, {"position": 1}, sort=[("position", 1)])
            if oldest is None:
                return None  # nothing yet: the next read looks again
            self._oldest = int(oldest["position"])
        return self._oldest

    async def _read(self, positions: dict[str, Any], limit: int) -> list[Document]:
        query = {"position": positions, **PUBLISHED}
        return await self._outbox.find(query).sort("position", 1).limit(limit).to_list()
