"""Transactional outbox shared by the services that emit events: numbering, relay reads, relay.

Each process writes outbox rows under its own writer id with dense sequence numbers and keeps a
checkpoint: the number up to which its rows are published. Publishing a batch costs one range
read and one checkpoint update, not a write per row. A crash between publish and checkpoint
re-publishes those rows later; consumers dedupe on ``ce_id``. Rows of a process that died are
published by the next process that finds its checkpoint idle (``adopt_after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faststream.kafka import KafkaBroker

from registry_contract.documents import Document
from shared.chassis.logs import describe
from shared.chassis.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PARKED, OUTBOX_PUBLISHED
from shared.chassis.publishing import publish_event
from shared.chassis.signing import EventSigner
from shared.chassis.supervision import stop_if_cancelled
from shared.outbox.rows import OutboxLog, event_from_outbox

log = structlog.get_logger(__name__)

Parked = list[tuple[Document, str]]  # rows the broker refused for good, with why

Publish = Callable[[list[Document]], Awaitable[Parked]]

# The broker will never take these records, however often they are sent: park them, move on.
REFUSED_FOR_GOOD = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
)

HEARTBEAT_SECONDS = 5.0

SAMPLE_SECONDS = 1.0


def kafka_publisher(broker: KafkaBroker, topic: str, signer: EventSigner) -> Publish:
    """Publish outbox rows to ``topic`` keyed by their ``key``, signed, waiting for every acknowledgement.

    Each record carries ``ce_revision`` = the row's ``position`` (:func:`event_from_outbox`).

    Returns the rows the broker refused for good (too large, invalid); any other failure raises,
    so the batch is retried (consumers dedupe what was already published).
    """

    async def publish(rows: list[Document]) -> Parked:
        parked: Parked = []
        sent: list[tuple[Document, Any]] = []
        for row in rows:
            try:
                future = await publish_event(broker, signer, event_from_outbox(row), topic=topic, key=row["key"])
            except REFUSED_FOR_GOOD as exc:
                parked.append((row, describe(exc)))
                continue
            sent.append((row, future))
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        for (row, _), result in zip(sent, results, strict=True):
            if isinstance(result, REFUSED_FOR_GOOD):
                parked.append((row, describe(result)))
            elif isinstance(result, BaseException):
                raise result
        return parked

    return publish


class OutboxRelay:
    """Drains this writer's outbox whenever a commit wakes it, and on a timer as a safety net."""

    def __init__(
        self,
        *,
        repo: OutboxLog,
        publish: Publish,
        batch_size: int,
        interval: float,
        name: str = "events",
        adopt_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self._repo, self._publish, self._name = repo, publish, name
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
            parked = await self._publish(rows)
            if parked:
                # Never blocks the rows behind it: kept in the outbox, counted, alerted on.
                await self._repo.park([(row["_id"], reason) for row, reason in parked])
                OUTBOX_PARKED.labels(self._name).inc(len(parked))
                for row, reason in parked:
                    log.error("outbox event refused by the broker; parked", event_id=row["_id"], reason=reason)
            await self._repo.advance(writer, rows[-1]["seq"])
            OUTBOX_PUBLISHED.labels(self._name).inc(len(rows))
            total += len(rows)
            if len(rows) < self._batch_size:
                # A writer's rows commit in sequence order, so a short batch was all there was;
                # a commit after it wakes the relay again. (A further read per drain was one more
                # query per registration on the database server.)
                break
        return total

    async def adopt_orphans(self) -> int:
        """Publish what dead writers left behind, then forget them."""
        total = 0
        for writer in await self._repo.stale_writers(self._adopt_after):
            total += await self.drain(writer)
            await self._repo.forget_writer(writer)
            log.info("adopted an idle writer's outbox", writer=writer, published=total)
        return total

    async def sample(self) -> None:
        """Set the backlog gauges from the database (it keeps growing while Kafka is away)."""
        backlog, oldest = await self._repo.unsent()
        OUTBOX_BACKLOG.labels(self._name).set(backlog)
        age = 0.0
        if oldest is not None:
            age = (datetime.now(UTC) - (oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC))).total_seconds()
        OUTBOX_OLDEST_AGE.labels(self._name).set(max(0.0, age))

    async def run(self) -> None:
        """Drain forever; errors are logged and retried, never fatal."""
        await self._repo.register_writer()
        last_heartbeat = last_sample = 0.0
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
            if time.monotonic() - last_sample > SAMPLE_SECONDS:
                last_sample = time.monotonic()
                with contextlib.suppress(Exception):  # the database may be away; next time
                    await self.sample()
            stop_if_cancelled()  # the broker client's waits may have swallowed a shutdown's cancellation
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns when the event is set
            # in the same turn as a cancellation and swallows it, leaving the relay running for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
