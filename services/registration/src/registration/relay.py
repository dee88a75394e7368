"""The outbox relay: publishes committed outcome events to Kafka in commit order.

Each process writes outbox rows under its own writer id with dense sequence numbers, and keeps a
checkpoint: the number up to which its rows are published. Publishing a batch costs one
range read and one checkpoint update, not a write per row. A crash between publish and
checkpoint re-publishes those rows later; consumers dedupe on ``ce_id``. Rows of a process that
died are published by the next process that finds its checkpoint idle (``adopt_after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from registration.repository import Repository
from shared.mongo import Document

log = structlog.get_logger(__name__)
Publish = Callable[[list[Document]], Awaitable[None]]
HEARTBEAT_SECONDS = 5.0


class OutboxRelay:
    """Drains this writer's outbox whenever a commit wakes it, and on a timer as a safety net."""

    def __init__(
        self,
        *,
        repo: Repository,
        publish: Publish,
        batch_size: int,
        interval: float,
        adopt_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self._repo, self._publish = repo, publish
        self._batch_size, self._interval, self._adopt_after = batch_size, interval, adopt_after
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Ask for a drain soon (called after each committed batch)."""
        self._wake.set()

    async def drain(self, writer: str | None = None) -> int:
        """Publish every row of ``writer`` (default: this process) after its checkpoint."""
        writer = writer or self._repo.writer
        total = 0
        while rows := await self._repo.pending(writer, self._batch_size):
            await self._publish(rows)
            await self._repo.advance(writer, rows[-1]["seq"])
            total += len(rows)
        return total

    async def adopt_orphans(self) -> int:
        """Publish what dead writers left behind, then forget them."""
        total = 0
        for writer in await self._repo.stale_writers(self._adopt_after):
            total += await self.drain(writer)
            await self._repo.forget_writer(writer)
            log.info("adopted an idle writer's outbox", writer=writer, published=total)
        return total

    async def run(self) -> None:
        """Drain forever; errors are logged and retried, never fatal."""
        await self._repo.register_writer()
        last_heartbeat = 0.0
        while True:
            try:
                if time.monotonic() - last_heartbeat > HEARTBEAT_SECONDS:
                    await self._repo.advance(self._repo.writer, 0)  # proves this writer alive
                    await self.adopt_orphans()
                    last_heartbeat = time.monotonic()
                await self.drain()
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(min(self._interval * 5, 2.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
