"""Kafka adapter: every record of every topic becomes an audit entry; offsets commit after the write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge

from audit.config import AuditSettings
from audit.entries import entry_for
from shared.consuming import Probe, Records, batch_subscriber
from shared.envelope import EnvelopeError, decode
from shared.mongo import Document

log = structlog.get_logger(__name__)
AUDITED = Counter("registry_audit_entries_total", "Audit entries appended, by source topic", ["topic"])
CHAIN_LENGTH = Gauge(
    "registry_audit_chain_length", "Entries in the hash chain of a topic-partition", ["topic", "partition"]
)
Append = Callable[[list[Document]], Awaitable[list[Document]]]


def register_audit_subscriber(broker: KafkaBroker, settings: AuditSettings, *, append: Append, probe: Probe) -> None:
    """Consume every contract topic in batches (group ``audit``)."""

    @batch_subscriber(
        broker,
        settings,
        *settings.all_topics(),
        group=settings.consumer_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
    )
    async def on_records(records: Records) -> None:
        now = datetime.now(UTC)
        entries = [_entry(record, now) for record in records]
        appended = await append(entries)
        for entry in appended:  # redelivered records were skipped: count only what was chained
            AUDITED.labels(entry["topic"]).inc()
            CHAIN_LENGTH.labels(entry["topic"], str(entry["partition"])).set(entry["seq"])


def _entry(record: ConsumerRecord[Any, Any], now: datetime) -> Document:
    try:
        event, error = decode(record.value, record.headers or ()), None
    except EnvelopeError as exc:
        event, error = None, f"{exc.reason}: {exc}"
    return entry_for(
        topic=record.topic, partition=record.partition, offset=record.offset, event=event, error=error, received_at=now
    )
