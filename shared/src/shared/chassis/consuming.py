"""How every consumer here runs: batches, commit after success, and no record that stops a partition.

A batch is handed to the service's handler whole (one MongoDB transaction is far cheaper than
one per record). When the handler fails:

- on a dependency (MongoDB or Kafka unreachable, a transient transaction error, or any error
  while a MongoDB ping fails) nothing is committed: the batch is sought back and retried after
  an exponential pause, so an outage loses nothing and is not a hot loop;
- on anything else, the batch is split in halves and each half retried, down to the single
  record that fails; that record is tried ``max_attempts`` times and then dead-lettered to
  ``<topic>.dlq`` with the error, and the partition moves on. Handlers are idempotent (they
  dedupe on ``ce_id``), so the halves that succeeded before are harmless if the batch is replayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.errors import KafkaTimeoutError as AIOKafkaTimeoutError
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pymongo.errors import ConnectionFailure, PyMongoError

from shared.chassis.kafka import DEAD_LETTERS, dead_letter
from shared.chassis.logs import describe
from shared.chassis.metrics import CONSUMER_BATCHES_RETRIED, observed_batch
from shared.chassis.settings import CommonSettings

log = structlog.get_logger(__name__)

LINGER_MIN_BYTES = 1 << 20  # what a lingering fetch waits to fill: more than a batch of records ever is
Records = tuple[ConsumerRecord[Any, Any], ...]
RecordsHandler = Callable[[Records], Awaitable[None]]
Probe = Callable[[], Awaitable[bool]]
HANDLER_FAILED = "handler_failed"


_UNAVAILABLE = (ConnectionFailure, KafkaConnectionError, AIOKafkaTimeoutError, TimeoutError, ConnectionError)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency is unavailable (retry later) rather than that the record is bad."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, PyMongoError):
        return exc.has_error_label("TransientTransactionError") or exc.has_error_label("RetryableWriteError")
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


class _DependencyDown(Exception):
    """The batch failed because a dependency is away: retry the whole batch later."""


async def _always_up() -> bool:
    return True


class BatchRunner:
    """Runs a handler over a batch, isolating and dead-lettering the record that keeps failing."""

    def __init__(
        self,
        handler: RecordsHandler,
        *,
        broker: KafkaBroker,
        group: str,
        probe: Probe = _always_up,
        max_attempts: int = 3,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
    ) -> None:
        self._handler, self._broker, self._group, self._probe = handler, broker, group, probe
        self._max_attempts, self._backoff, self._backoff_max = max_attempts, backoff_seconds, backoff_max_seconds
        self._consecutive_outages = 0

    async def run(self, records: Records) -> None:
        """Handle ``records``; raise (so the batch is sought back) only while a dependency is down."""
        try:
            await self._isolating(records)
        except _DependencyDown as down:
            self._consecutive_outages += 1
            pause = min(self._backoff_max, self._backoff * 2 ** (self._consecutive_outages - 1))
            log.warning(
                "batch failed on a dependency; it will be retried",
                error=describe(down.__cause__ or down),
                records=len(records),
                retry_in_seconds=pause,
                outages_in_a_row=self._consecutive_outages,
            )
            CONSUMER_BATCHES_RETRIED.labels(self._group).inc()
            await asyncio.sleep(pause)
            raise
        self._consecutive_outages = 0

    async def _isolating(self, records: Records) -> None:
        try:
            await self._handler(records)
            return
        except Exception as exc:
            await self._raise_if_transient(exc)
            if len(records) == 1:
                await self._retry_then_dead_letter(records[0], exc)
                return
            log.warning("batch failed; isolating the record that fails", error=describe(exc), records=len(records))
        middle = len(records) // 2
        await self._isolating(records[:middle])
        await self._isolating(records[middle:])

    async def _raise_if_transient(self, exc: Exception) -> None:
        # A failure while MongoDB does not answer is the outage's, whatever its type.
        if is_transient(exc) or not await self._probe():
            raise _DependencyDown() from exc

    async def _retry_then_dead_letter(self, record: ConsumerRecord[Any, Any], first: Exception) -> None:
        last: Exception = first
        for attempt in range(2, self._max_attempts + 1):
            await asyncio.sleep(0.05 * attempt)
            try:
                await self._handler((record,))
                return
            except Exception as exc:
                await self._raise_if_transient(exc)
                last = exc
        await dead_letter(self._broker, record, reason=HANDLER_FAILED, error=describe(last))
        DEAD_LETTERS.labels(record.topic, HANDLER_FAILED).inc()
        log.error(
            "dead-lettered a record that keeps failing",
            error=describe(last),
            attempts=self._max_attempts,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )


async def _raw_records(message: KafkaMessage) -> Any:
    """The batch's records as aiokafka gave them: handlers decode each as a CloudEvent themselves.

    Handing them over as the body, rather than asking for the message by its type, keeps
    FastStream's dependency injection from resolving a context field for each batch, which it does
    in a worker thread (a thread hop per batch, in every consumer).
    """
    return message.raw_message


def batch_subscriber(
    broker: KafkaBroker,
    settings: CommonSettings,
    *topics: str,
    group: str,
    max_records: int,
    timeout_ms: int,
    probe: Probe = _always_up,
    linger_ms: int = 0,
) -> Callable[[RecordsHandler], RecordsHandler]:
    """Register a handler of raw record batches the way every consumer here runs.

    Batches, earliest offset, commit only after success (``NACK_ON_ERROR`` seeks the batch back
    when a dependency is down); poison is isolated by :class:`BatchRunner`. Every batch is timed,
    counted by outcome and puts its position on log lines (:func:`shared.chassis.metrics.observed_batch`).
    ``probe`` answers whether MongoDB is reachable. ``linger_ms`` > 0 asks the broker to hold each
    fetch up to that long for more records (Kafka's ``fetch.min.bytes`` and ``fetch.max.wait.ms``):
    a consumer whose every batch costs a transaction commits fewer, larger ones, for that much latency.
    """
    subscriber = broker.subscriber(
        *topics,
        group_id=group,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=timeout_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        fetch_max_wait_ms=linger_ms or settings.kafka_fetch_max_wait_ms,
        fetch_min_bytes=LINGER_MIN_BYTES if linger_ms else 1,
        group_instance_id=settings.kafka_group_instance_id,
        decoder=_raw_records,
    )

    def register(handler: RecordsHandler) -> RecordsHandler:
        runner = BatchRunner(
            handler,
            broker=broker,
            group=group,
            probe=probe,
            max_attempts=settings.consumer_max_attempts,
            backoff_seconds=settings.consumer_backoff_seconds,
            backoff_max_seconds=settings.consumer_backoff_max_seconds,
        )

        async def on_batch(body: Any) -> None:  # Any: nothing for FastStream to validate or copy
            records: Records = body
            with observed_batch(group, records):
                await runner.run(records)

        # FastStream names the subscriber after the function it is given.
        on_batch.__name__ = on_batch.__qualname__ = handler.__name__
        subscriber(on_batch)
        return handler

    return register
