"""Kafka adapter: every record of every topic becomes an audit entry; offsets commit after the write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker

from audit import metrics
from audit.config import AuditSettings
from audit.entries import Source, entry_for, received_now, with_record
from registry_contract.documents import Document
from registry_contract.envelope import EnvelopeError, decode
from shared.chassis.consuming import Probe, Records, batch_subscriber
from shared.chassis.identity import RecordIdentity

log = structlog.get_logger(__name__)
Append = Callable[[list[Document]], Awaitable[list[Document]]]


def register_audit_subscriber(
    broker: KafkaBroker, settings: AuditSettings, *, append: Append, identity: RecordIdentity, probe: Probe
) -> None:
    """Consume every contract topic in batches (group ``audit``)."""
    key_topics = frozenset({settings.topic_commands, settings.topic_deploy})
    events_topic = settings.topic_events

    @batch_subscriber(
        broker,
        settings,
        *settings.all_topics(),
        group=settings.consumer_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
        linger_ms=settings.batch_linger_ms,
    )
    async def on_records(records: Records) -> None:
        now = received_now()
        entries = [
            await _entry(record, now, identity, key_topics=key_topics, events_topic=events_topic) for record in records
        ]
        appended = await append(entries)
        for entry in appended:  # redelivered records were skipped: count only what was chained
            metrics.AUDITED.labels(entry["topic"]).inc()
            metrics.CHAIN_LENGTH.labels(entry["topic"], str(entry["partition"])).set(entry["seq"])


async def _entry(
    record: ConsumerRecord[Any, Any],
    now: datetime,
    identity: RecordIdentity,
    *,
    key_topics: frozenset[str],
    events_topic: str,
) -> Document:
    source = Source.of(record.topic, record.partition, record.offset, record.key, record.value, record.headers)
    try:
        event = decode(record.value, record.headers or ())
    except EnvelopeError as exc:
        return entry_for(source, event=None, error=f"{exc.reason}: {exc}", received_at=now)
    # A key's signature (or bearer key) proves who sent a command or a report on their topics only: a copy
    # on another topic (a dead letter, registry.events) is recorded as a claim, not as that key's act.
    by_key = event.proof is not None or event.authorization is not None
    principal = await identity.principal(record, event) if record.topic in key_topics or not by_key else None
    signed = principal is None and identity.signed(record)
    entry = entry_for(source, event=event, error=None, received_at=now, principal=principal, signed=signed)
    if record.topic == events_topic:  # the services' model events: their data is kept for evidence bundles
        entry = with_record(entry, record.key, record.value, record.headers)
    return entry
