"""The projection: loads the persisted read model, catches up from the owners, then follows ``registry.events``.

Each query replica reads every partition of the events topic outside any consumer group and
applies only the events a service signed. At start it loads what it persisted, reads each owner's
event log (``GET /internal/v1/events``) from a little before the highest revision it had applied,
and resumes the topic at the offsets it stored, or from the beginning when those are no longer in
the log: the embedded broker forgets its topics when the stack stops, and the catch-up has read
what it lost. Applying an event twice changes nothing (see :mod:`query.projection.apply`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo.errors import PyMongoError

from query import metrics
from query.projection.apply import apply_event
from query.projection.model import ReadModel
from query.projection.owners import OwnerLog, OwnerUnavailable
from query.projection.storage import Checkpoint, Flushed, ProjectionStore, Rows
from registry_contract.envelope import CloudEvent, EnvelopeError, decode
from shared.chassis.consuming import LINGER_MIN_BYTES
from shared.chassis.kafka import TAKE_RECORDS, client_options
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import EventSigner

log = structlog.get_logger(__name__)
CATCH_UP_MARGIN_NS = 5 * 60 * 1_000_000_000  # read each owner's log from 5 minutes before the revision reached
APPLY_SLICE = 25  # events applied between two yields to the event loop (about 10 ms of work)
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)  # back-off between catch-up attempts while an owner is unreachable


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild found: models, versions, and events read per owner."""

    models: int
    versions: int
    events: dict[str, int]


class ProjectionTooLarge(RuntimeError):
    """The read model would hold more versions than ``QUERY_PROJECTION_MAX_VERSIONS`` allows."""


class Projection:
    """Keeps ``model`` current: persisted state, owners' logs, then the topic; flushes changes behind."""

    def __init__(
        self,
        model: ReadModel,
        store: ProjectionStore,
        owners: Sequence[OwnerLog],
        *,
        settings: CommonSettings,
        flush_seconds: float = 2.0,
        linger_ms: int = 0,
        max_versions: int = 1_000_000,
        signer: EventSigner | None = None,
    ) -> None:
        self.model, self._store, self._owners, self._settings = model, store, list(owners), settings
        self._flush_seconds, self._linger_ms, self._max_versions = flush_seconds, linger_ms, max_versions
        self._signer = signer or EventSigner.from_settings(settings)
        self._flushed = Flushed()
        self._offsets: dict[int, int] = {}
        self._pending: Rows | None = None  # rows a failed flush could not write, written first next time
        self._applying = asyncio.Lock()  # a rebuild holds it: no event lands in the model being replaced
        self._writing = asyncio.Lock()
        self._loaded = False
        self._caught_up: dict[str, bool] = {}
        self._reached: dict[str, int] = {}  # the revision per owner loaded, where its catch-up starts
        self.started = asyncio.Event()  # loaded, and the first catch-up attempt is over
        self.applied = 0  # events applied since this process started (tests count replays with it)

    async def ready(self) -> None:
        """A readiness check: fails until the persisted model is loaded and the owners' logs were tried."""
        if not self.started.is_set():
            raise RuntimeError("the read model is still loading")

    async def run(self) -> None:
        """Load, catch up, follow the topic and flush until cancelled (the chassis restarts it if it dies)."""
        if not self._loaded:
            loaded, checkpoint = await self._store.load()
            self._check_size(loaded)
            self.model.adopt(loaded)
            self._flushed.history = {mid: len(rows) for mid, rows in loaded.history.items()}
            self._flushed.reports = {mid: len(rows) for mid, rows in loaded.reports.items()}
            self._offsets = dict(checkpoint.offsets)
            # Not the revisions reached later: the topic may bring newer events before an owner answers.
            self._reached = dict(self.model.positions)
            self._loaded = True
            log.info("read model loaded", models=len(loaded.models), versions=loaded.version_count())
        await self._catch_up(self._behind())
        self.started.set()
        consumer = AIOKafkaConsumer(
            client_id=f"{self._settings.service_name}-projection",
            enable_auto_commit=False,
            # Lingering, the broker answers a trickle of events a few at a time instead of one fetch each.
            fetch_max_wait_ms=self._linger_ms or self._settings.kafka_fetch_max_wait_ms,
            fetch_min_bytes=LINGER_MIN_BYTES if self._linger_ms else 1,
            **client_options(self._settings),
        )
        await consumer.start()
        try:
            partitions = await self._assign(consumer)
            await self._seek(consumer, partitions)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._retry_catch_up())
                tasks.create_task(self._flush_loop())
                await self._follow(consumer)
        finally:
            await consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        topic = self._settings.topic_events
        while not (found := consumer.partitions_for_topic(topic)):
            await consumer.topics()  # fetches metadata; the topic may not exist for a moment at start
            await asyncio.sleep(0.5)
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        return partitions

    async def _seek(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Resume at the stored offsets that are still in the log; elsewhere from the beginning."""
        starts, ends = await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
        for partition in partitions:
            stored = self._offsets.get(partition.partition)
            if stored is not None and starts[partition] <= stored <= ends[partition]:
                consumer.seek(partition, stored)
            else:
                if stored is not None:
                    log.warning(
                        "stored offset not in the log: reading the partition from its beginning",
                        partition=partition.partition,
                        stored=stored,
                        end=ends[partition],
                    )
                consumer.seek(partition, starts[partition])
                self._offsets[partition.partition] = starts[partition]

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=TAKE_RECORDS)
            records = [record for found in batches.values() for record in found]
            applied: list[CloudEvent] = []
            # In slices, each told to the subscribers before the next: a fetch of hundreds of events
            # (a third of a millisecond each) applied at once held every read behind it for that long.
            for start in range(0, len(records), APPLY_SLICE):
                chunk = records[start : start + APPLY_SLICE]
                events = self._verified(chunk)
                async with self._applying:
                    self.apply(events)
                    for record in chunk:
                        self._offsets[record.partition] = record.offset + 1
                applied += events
                await asyncio.sleep(0)
            newest = newest_time(applied)
            pending = any((consumer.highwater(tp) or 0) > self._offsets.get(tp.partition, 0) for tp in batches)
            lag = (datetime.now(UTC) - newest).total_seconds() if newest is not None and pending else 0.0
            metrics.PROJECTION_LAG_SECONDS.set(max(lag, 0.0))

    def _verified(self, records: Iterable[Any]) -> list[CloudEvent]:
        events = []
        for record in records:
            headers = [(name, bytes(value)) for name, value in record.headers or ()]
            if not self._signer.verify(record.value, headers):
                metrics.PROJECTION_UNSIGNED_EVENTS.inc()  # anyone on the bus could send these
                continue
            try:
                events.append(decode(record.value, headers))
            except EnvelopeError:
                continue
        return events

    def apply(self, events: Iterable[CloudEvent]) -> None:
        """Apply ``events`` in order and tell the model's subscribers which models they changed."""
        changed: set[str] = set()
        try:
            for event in events:
                if (found := apply_event(self.model, event)) is not None:
                    changed.add(found)
                    self.applied += 1
                    metrics.PROJECTION_APPLIED_EVENTS.inc()
            if changed:
                self._check_size(self.model)
        finally:
            # Even when something failed: what was applied stays applied, and the events replayed
            # after a restart change nothing, so this is its readers' (caches, orders, search) only notice.
            self.model.notify(changed)

    def _check_size(self, model: ReadModel) -> None:
        if model.version_count() > self._max_versions:
            raise ProjectionTooLarge(
                f"the read model holds {model.version_count()} versions, more than QUERY_PROJECTION_MAX_VERSIONS "
                f"({self._max_versions}): raise it (and the service's memory) rather than let the process swap"
            )

    async def _catch_up(self, owners: Sequence[OwnerLog]) -> None:
        """Apply each owner's log, in order, from a little before what was loaded; note those that answered.

        The first owner that does not answer ends the attempt: a later owner's events name what an
        earlier one's define (the tracker's reports, registration's versions), and read first they
        would be dropped as about versions not known yet, then never read again.
        """
        for position, owner in enumerate(owners):
            after = max(self._reached.get(owner.source, 0) - CATCH_UP_MARGIN_NS, 0)
            try:
                count = await self._read_log(owner, after, into=self.model)
            except OwnerUnavailable as exc:
                log.warning(
                    "owner's event log unreachable; following the topic",
                    owner=repr(owner),
                    error=str(exc),
                    waiting=[repr(later) for later in owners[position + 1 :]],  # read once this one answers
                )
                return
            self._caught_up[owner.source] = True
            log.info("caught up from an owner's event log", owner=repr(owner), after=after, events=count)

    async def _read_log(self, owner: OwnerLog, after: int, *, into: ReadModel) -> int:
        count = 0
        async for events in owner.pages(after):
            count += len(events)
            if into is self.model:
                async with self._applying:
                    self.apply(events)
            else:
                for event in events:
                    apply_event(into, event)
        return count

    async def _retry_catch_up(self) -> None:
        attempt = 0
        while self._behind():
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1
            await self._catch_up(self._behind())  # asked after the pause: a rebuild meanwhile caught all up

    def _behind(self) -> list[OwnerLog]:
        """The owners whose logs this process has not read yet, in their order."""
        return [owner for owner in self._owners if not self._caught_up.get(owner.source)]

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush()
            except PyMongoError as exc:  # the reads go on from memory; the rows wait for the next round
                log.warning("read model not persisted this round", error=str(exc))

    async def flush(self, *, everything: bool = False) -> None:
        """Write what changed since the last flush, with the offsets and revisions it corresponds to."""
        async with self._writing:
            if self._pending is None and not (everything or self.model.dirty_models or self.model.dirty_versions):
                return
            rows = self._flushed.take(self.model, everything=everything)
            if self._pending is not None:
                rows, self._pending = self._pending.then(rows), None
            checkpoint = Checkpoint(dict(self._offsets), dict(self.model.positions))
            try:
                await self._store.write(rows, checkpoint)  # the checkpoint last, once every row is written
            except BaseException:
                self._pending = rows
                raise

    async def rebuild(self) -> Rebuilt:
        """Build a fresh read model from every owner's whole log, swap it in and persist it whole."""
        fresh = ReadModel()
        counts = {owner.source: await self._read_log(owner, 0, into=fresh) for owner in self._owners}
        self._check_size(fresh)
        async with self._applying, self._writing:
            # What the topic brought meanwhile is applied again to the fresh model: the owners' logs
            # may have been read before it landed, and the revisions skip what they already had.
            for owner in self._owners:
                after = max(fresh.positions.get(owner.source, 0) - CATCH_UP_MARGIN_NS, 0)
                async for events in owner.pages(after):
                    for event in events:
                        apply_event(fresh, event)
            self.model.adopt(fresh)
            self._flushed = Flushed()
            self._pending = None
            await self._store.clear()
            rows = self._flushed.take(self.model, everything=True)
            await self._store.write(rows, Checkpoint(dict(self._offsets), dict(fresh.positions)))
        for owner in self._owners:
            self._caught_up[owner.source] = True
        log.info("read model rebuilt", models=len(fresh.models), versions=fresh.version_count(), events=counts)
        return Rebuilt(len(fresh.models), fresh.version_count(), counts)


def newest_time(events: Iterable[CloudEvent]) -> datetime | None:
    """The time of the newest of ``events``."""
    return max((event.time.astimezone(UTC) for event in events), default=None)
