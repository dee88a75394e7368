"""The outbox relay: publishes committed outcome events to Kafka, then marks them sent.

A crash between publish and mark re-publishes those rows on restart; consumers dedupe on
``ce_id``, so the read side sees each event once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from registration.repository import Repository
from shared.mongo import Document

log = structlog.get_logger(__name__)
Publish = Callable[[list[Document]], Awaitable[None]]


class OutboxRelay:
    """Drains the outbox whenever woken by a commit, and on a timer as a safety net."""

    def __init__(self, *, repo: Repository, publish: Publish, batch_size: int, interval: float) -> None:
        self._repo, self._publish = repo, publish
        self._batch_size, self._interval = batch_size, interval
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Ask for a drain soon (called after each committed batch)."""
        self._wake.set()

    async def drain(self) -> int:
        """Publish every unsent row, oldest first; return how many."""
        total = 0
        while True:
            rows = await self._repo.unsent(self._batch_size)
            if not rows:
                return total
            await self._publish(rows)
            await self._repo.mark_sent([row["_id"] for row in rows])
            total += len(rows)

    async def run(self) -> None:
        """Drain forever; errors are logged and retried, never fatal."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.drain()
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(min(self._interval * 5, 2.0))
