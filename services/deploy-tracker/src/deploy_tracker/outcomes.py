"""Waiting for what the tracker made of a report the HTTP bridge published (``Prefer: wait``, RFC 7240).

The tracker records every report it takes, applied or not, as one row of ``deployments`` whose
``_id`` is the report's sender-scoped id, and only once the report's effects are committed; so that
row appearing is the outcome. The bridge polls for that one row by id, backing off, for at most the
granted wait, and only as many requests wait at once as the setting allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from registry_contract.documents import Document

log = structlog.get_logger(__name__)
FIRST_POLL_SECONDS = 0.05  # the tracker answers within a batch time-out and a commit when it keeps up
MAX_POLL_SECONDS = 0.5  # so a 30 s wait costs at most ~65 reads of one row by id
_NO_LONGER_THAN = 10**9  # a longer delta-seconds is capped anyway; int() of a huge string is not free


def requested_wait(prefer: Sequence[str]) -> int | None:
    """The ``wait`` preference, in seconds, among ``Prefer`` header values; ``None`` when absent or malformed.

    Preferences the bridge does not know are ignored and only the first ``wait`` counts, as RFC 7240
    says; a value that is not delta-seconds makes the preference absent rather than the request fail.
    """
    for header in prefer:
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            seconds = value.strip().strip('"')
            if not (seconds.isascii() and seconds.isdigit()):
                return None
            return int(seconds) if len(seconds) < 10 else _NO_LONGER_THAN
    return None


@dataclass(frozen=True)
class Waited:
    """A wait that took place: how long it was granted, and the report's history row if it came in time."""

    seconds: int
    row: Document | None


class OutcomeWatch:
    """Waits for reports' history rows: each wait capped in time, the number of waiting requests capped too."""

    def __init__(self, history: AsyncCollection[Document], *, max_seconds: int, concurrency: int) -> None:
        self._history, self._max_seconds = history, max_seconds
        self._slots = asyncio.Semaphore(concurrency)

    async def wait(self, report_key: str, *, requested: int) -> Waited | None:
        """Wait up to ``requested`` s (capped) for the row of ``report_key``; ``None``: too many waiting already."""
        if self._slots.locked():
            return None  # RFC 7240 lets a server ignore a preference: answer at once, as without it
        seconds = min(requested, self._max_seconds)
        async with self._slots:
            return Waited(seconds, await self._poll(report_key, seconds))

    async def _poll(self, report_key: str, seconds: int) -> Document | None:
        """The row once it exists, or ``None`` when ``seconds`` pass (or the database does not answer) first."""
        delay = FIRST_POLL_SECONDS
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await asyncio.sleep(delay)
                    row = await self._history.find_one({"_id": report_key})
                    if row is not None:
                        return row
                    delay = min(delay * 2, MAX_POLL_SECONDS)
        except TimeoutError:
            return None
        except PyMongoError as exc:  # the report is published either way: answer as without the preference
            log.warning("report outcome lookup failed", error=str(exc), error_type=type(exc).__name__)
            return None
