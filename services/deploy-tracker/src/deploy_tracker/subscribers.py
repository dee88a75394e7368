"""Kafka adapter: decode a batch of deployment reports, authenticate them, apply; DLQ the undecodable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker, KafkaMessage

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.handlers import Report
from shared.auth import Principal, bearer_token
from shared.envelope import CloudEvent, EnvelopeError, decode
from shared.kafka import batch_subscriber, dead_letter

log = structlog.get_logger(__name__)
HandleBatch = Callable[[list[Report]], Awaitable[object]]
Authenticate = Callable[[str | None], Awaitable[Principal | None]]


def register_report_subscriber(
    broker: KafkaBroker, settings: DeployTrackerSettings, *, handle_batch: HandleBatch, authenticate: Authenticate
) -> None:
    """Consume ``deploy.events`` in batches (group ``deploy-tracker``), committing after the write."""

    @batch_subscriber(
        broker,
        settings,
        settings.topic_deploy,
        group=settings.consumer_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
    )
    async def on_reports(_: Any, message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message
        reports: list[Report] = []
        for record in records:
            try:
                event = decode(record.value, record.headers or ())
            except EnvelopeError as exc:
                await dead_letter(broker, record, reason=exc.reason, error=str(exc))
                log.warning("dead-lettered a record", topic=record.topic, offset=record.offset, reason=exc.reason)
                continue
            reports.append(Report(event, await authenticate(bearer_token(event.authorization))))
        if not reports:
            return
        try:
            await handle_batch(reports)
        except Exception:
            log.exception("report batch failed; it will be retried", records=len(records))
            await asyncio.sleep(settings.retry_backoff_seconds)
            raise


def register_event_subscriber(
    broker: KafkaBroker, settings: DeployTrackerSettings, *, fan_out: Callable[[list[CloudEvent]], Awaitable[int]]
) -> None:
    """Consume ``registry.events`` (its own group) and turn matching events into webhook deliveries."""

    @batch_subscriber(
        broker,
        settings,
        settings.topic_events,
        group=settings.webhook_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
    )
    async def on_events(_: Any, message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message
        events = []
        for record in records:
            try:
                events.append(decode(record.value, record.headers or ()))
            except EnvelopeError:
                continue  # registry.events is written by the registry itself; nothing to deliver
        try:
            await fan_out(events)
        except Exception:
            log.exception("webhook fan-out failed; it will be retried", records=len(records))
            await asyncio.sleep(settings.retry_backoff_seconds)
            raise
