"""Kafka adapter: decode a batch of deployment reports, authenticate them, apply; DLQ the undecodable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from faststream.kafka import KafkaBroker

from deploy_tracker import metrics
from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.reports import Report
from registry_contract.envelope import CloudEvent, EnvelopeError, decode
from shared.chassis.consuming import Probe, Records, batch_subscriber
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import dead_letter_undecodable, decode_records

log = structlog.get_logger(__name__)
HandleBatch = Callable[[list[Report]], Awaitable[object]]


def register_report_subscriber(
    broker: KafkaBroker,
    settings: DeployTrackerSettings,
    *,
    handle_batch: HandleBatch,
    identity: RecordIdentity,
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
        decoded, undecodable = decode_records(records)
        for record, event in decoded:
            proven = await identity.provenance(record, event)
            # A bearer key accepted in transition goes no further than here.
            event = event.model_copy(update={"authorization": None}) if event.authorization else event
            reports.append(Report(event, proven.principal, unproven=proven.why_not))
        if reports:
            await handle_batch(reports)
        await dead_letter_undecodable(broker, undecodable)  # last: once, not once per retry of the batch


def register_event_subscriber(
    broker: KafkaBroker,
    settings: DeployTrackerSettings,
    *,
    fan_out: Callable[[list[CloudEvent]], Awaitable[int]],
    identity: RecordIdentity,
    probe: Probe,
) -> None:
    """Consume ``registry.events`` (its own group) and turn matching events into webhook deliveries.

    Only events a service signed are sent on: a record forged onto the topic by another producer
    would otherwise reach a team's endpoint signed with the team's own webhook secret.
    """

    @batch_subscriber(
        broker,
        settings,
        settings.topic_events,
        group=settings.webhook_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
        linger_ms=settings.events_linger_ms,
    )
    async def on_events(records: Records) -> None:
        events = []
        for record in records:
            if not identity.signed(record):
                metrics.UNSIGNED_EVENTS.inc()
                continue
            try:
                events.append(decode(record.value, record.headers or ()))
            except EnvelopeError:
                continue  # signed, so the registry's own; nothing a team could be sent
        await fan_out(events)


def register_version_subscriber(
    broker: KafkaBroker,
    settings: DeployTrackerSettings,
    *,
    learn: Callable[[list[CloudEvent]], Awaitable[int]],
    identity: RecordIdentity,
    probe: Probe,
) -> None:
    """Consume ``registry.events`` (group ``deploy-tracker-versions``) into the tracker's table of versions.

    Only events a service signed count: a record forged onto the topic must not make a version
    exist, nor approve one (:mod:`deploy_tracker.known_versions`).
    """

    @batch_subscriber(
        broker,
        settings,
        settings.topic_events,
        group=settings.versions_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
        linger_ms=settings.events_linger_ms,
    )
    async def on_version_events(records: Records) -> None:
        events = []
        for record in records:
            if not identity.signed(record):
                continue  # counted once, by the webhook consumer of the same records
            try:
                events.append(decode(record.value, record.headers or ()))
            except EnvelopeError:
                continue  # signed, so the registry's own, and no version event
        await learn(events)
