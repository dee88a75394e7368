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
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from shared.envelope import CloudEvent
from shared.logs import describe
from shared.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PARKED, OUTBOX_PUBLISHED
from shared.mongo import Document
from shared.signing import EventSigner

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


def writer_id() -> str:
    """A writer id unique to this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Numbering:
    """Numbers outbox rows under a lock, so one writer's commits are numbered in commit order.

    ``seq`` is dense per writer (numbers of a failed commit are given back), so the relay can ask
    for exactly the next ``limit`` rows by range: the stand-in materialises every row a query's
    range matches, whatever the limit. ``position`` is time-based and orders rows of all writers.
    """

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self._last_position = 0
        self._seq = 0

    def take(self, rows: list[Document], writer: str) -> int:
        """Number ``rows``; return the sequence to restore if their commit fails."""
        before = self._seq
        for row in rows:
            self._last_position = max(self._last_position + 1, time.time_ns())
            self._seq += 1
            row["position"], row["seq"], row["writer"] = self._last_position, self._seq, writer
        return before

    def give_back(self, seq: int) -> None:
        """Undo :meth:`take` after a failed commit, keeping the sequence gap-free."""
        self._seq = seq

    @property
    def last(self) -> int:
        """The number of this writer's latest committed row (0 before the first)."""
        return self._seq


class OutboxLog(Protocol):
    """What the relay needs: this writer's id, the rows after a checkpoint, and checkpoints."""

    writer: str

    async def register_writer(self) -> None:
        """Create this writer's relay checkpoint."""
        ...

    async def pending(self, writer: str, limit: int) -> list[Document]:
        """Outbox rows of ``writer`` after its checkpoint, oldest first."""
        ...

    async def advance(self, writer: str, seq: int) -> None:
        """Move ``writer``'s checkpoint to ``seq`` (everything up to it is published)."""
        ...

    async def stale_writers(self, idle: timedelta) -> list[str]:
        """Other writers whose checkpoint has not moved for ``idle``: their processes are gone."""
        ...

    async def forget_writer(self, writer: str) -> None:
        """Drop a drained writer's checkpoint."""
        ...

    async def unsent(self) -> tuple[int, datetime | None]:
        """How many of this writer's rows are not published yet, and the time of the oldest."""
        ...

    async def park(self, rows: list[tuple[str, str]]) -> None:
        """Mark rows (by id) the broker refused for good, with the reason; they stay for inspection."""
        ...


class MongoOutboxLog:
    """:class:`OutboxLog` over an outbox collection and its checkpoints; services' repositories extend it."""

    def __init__(
        self, outbox: AsyncCollection[Document], checkpoints: AsyncCollection[Document], *, writer: str
    ) -> None:
        self._outbox, self._checkpoints, self.writer = outbox, checkpoints, writer
        self._numbering = Numbering()
        self._published = 0  # this writer's checkpoint: only this process advances it

    async def commit_numbered(
        self,
        client: AsyncMongoClient[Document],
        rows: list[Document],
        write: Callable[[AsyncClientSession], Awaitable[None]],
    ) -> None:
        """Number ``rows`` after this writer's earlier commits and run ``write`` in one transaction.

        The numbers are given back if the transaction fails, so the sequence stays gap-free.
        """
        async with self._numbering.lock:
            before = self._numbering.take(rows, self.writer)
            try:
                async with client.start_session() as session:
                    await session.with_transaction(write)
            except BaseException:
                self._numbering.give_back(before)
                raise

    async def register_writer(self) -> None:
        await self._checkpoints.update_one(
            {"_id": self.writer}, {"$setOnInsert": {"seq": 0}, "$set": {"seen_at": datetime.now(UTC)}}, upsert=True
        )

    async def pending(self, writer: str, limit: int) -> list[Document]:
        checkpoint = await self._checkpoints.find_one({"_id": writer})
        after = checkpoint["seq"] if checkpoint else 0
        query = {"writer": writer, "seq": {"$gt": after, "$lte": after + limit}}
        return await self._outbox.find(query).sort("seq", 1).to_list()

    async def advance(self, writer: str, seq: int) -> None:
        await self._checkpoints.update_one(
            {"_id": writer}, {"$max": {"seq": seq}, "$set": {"seen_at": datetime.now(UTC)}}, upsert=True
        )
        if writer == self.writer:
            self._published = max(self._published, seq)

    async def stale_writers(self, idle: timedelta) -> list[str]:
        cutoff = datetime.now(UTC) - idle
        docs = await self._checkpoints.find({"seen_at": {"$lt": cutoff}}).to_list()
        return [doc["_id"] for doc in docs if doc["_id"] != self.writer]

    async def forget_writer(self, writer: str) -> None:
        await self._checkpoints.delete_one({"_id": writer})

    async def park(self, rows: list[tuple[str, str]]) -> None:
        now = datetime.now(UTC)
        for row_id, reason in rows:
            await self._outbox.update_one({"_id": row_id}, {"$set": {"parked_reason": reason, "parked_at": now}})

    async def unsent(self) -> tuple[int, datetime | None]:
        # Sequences are dense and both ends are known here: the backlog is a subtraction, and
        # the database is asked only for the oldest row's time, by point lookup, when there is one.
        backlog = max(0, self._numbering.last - self._published)
        if not backlog:
            return 0, None
        oldest = await self._outbox.find_one({"writer": self.writer, "seq": self._published + 1}, {"time": 1})
        return backlog, oldest["time"] if oldest else None


def event_from_outbox(doc: Document) -> CloudEvent:
    """Rebuild the CloudEvent that an outbox row stands for."""
    return CloudEvent(
        id=doc["_id"],
        source=doc["source"],
        type=doc["type"],
        time=doc["time"],
        subject=doc.get("subject"),
        correlation_id=doc["correlation_id"],
        causation_id=doc.get("causation_id"),
        data=doc["data"],
    )


def outbox_row(event: CloudEvent, *, key: str, team: str | None, model_id: str | None) -> Document:
    """The outbox row of ``event`` (the inverse of :func:`event_from_outbox`), numbered at commit."""
    return {
        "_id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "key": key,
        "data": event.data,
        "team": team,
        "model_id": model_id,
    }


def kafka_publisher(broker: KafkaBroker, topic: str, signer: EventSigner) -> Publish:
    """Publish outbox rows to ``topic`` keyed by their ``key``, signed, waiting for every acknowledgement.

    Returns the rows the broker refused for good (too large, invalid); any other failure raises,
    so the batch is retried (consumers dedupe what was already published).
    """

    async def publish(rows: list[Document]) -> Parked:
        parked: Parked = []
        sent: list[tuple[Document, Any]] = []
        for row in rows:
            value, header_map = signer.encode(event_from_outbox(row))
            key = row["key"].encode()
            try:
                future = await broker.publish(value, topic=topic, key=key, headers=header_map, no_confirm=True)
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
