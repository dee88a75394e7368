"""Kafka adapter: decode a batch of deployment reports, authenticate them, apply; DLQ the undecodable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from faststream.kafka import KafkaBroker

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.handlers import Report
from shared.auth import Principal, bearer_token
from shared.consuming import Probe, Records, batch_subscriber
from shared.envelope import CloudEvent, EnvelopeError, decode
from shared.kafka import decode_or_dead_letter

log = structlog.get_logger(__name__)
HandleBatch = Callable[[list[Report]], Awaitable[object]]
Authenticate = Callable[[str | None], Awaitable[Principal | None]]


def register_report_subscriber(
    broker: KafkaBroker,
    settings: DeployTrackerSettings,
    *,
    handle_batch: HandleBatch,
    authenticate: Authenticate,
    probe: Probe,
) -> None:
    """Consume ``deploy.events`` in batches (group ``deploy-tracker``), committing after the write."""

    @batch_subscriber(
        broker,
        settings,
        settings.topic_deploy,
        group=settings.consumer_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
    )
    async def on_reports(records: Records) -> None:
        reports: list[Report] = []
        for record in records:
            event = await decode_or_dead_letter(broker, record)
            if event is None:
                continue
            reports.append(Report(event, await authenticate(bearer_token(event.authorization))))
        if not reports:
            return
        await handle_batch(reports)


def register_event_subscriber(
    broker: KafkaBroker,
    settings: DeployTrackerSettings,
    *,
    fan_out: Callable[[list[CloudEvent]], Awaitable[int]],
    probe: Probe,
) -> None:
    """Consume ``registry.events`` (its own group) and turn matching events into webhook deliveries."""

    @batch_subscriber(
        broker,
        settings,
        settings.topic_events,
        group=settings.webhook_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
    )
    async def on_events(records: Records) -> None:
        events = []
        for record in records:
            try:
                events.append(decode(record.value, record.headers or ()))
            except EnvelopeError:
                continue  # registry.events is written by the registry itself; nothing to deliver
        await fan_out(events)
