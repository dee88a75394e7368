"""Kafka adapters: commands, and the tracker's deployment status changes (where versions run).

Commands are decoded a batch at a time and handled; the undecodable are dead-lettered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog
from faststream.kafka import KafkaBroker

from registration.config import RegistrationSettings
from registration.deployments import DeployedEnvironments, StatusSeen, status_seen
from registration.handlers import Command, Outcome
from registry_contract import correlation, messages
from registry_contract.envelope import EnvelopeError, decode
from shared.chassis.consuming import Probe, Records, batch_subscriber
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import dead_letter_undecodable, decode_records
from shared.chassis.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

HandleBatch = Callable[[list[Command]], Awaitable[list[Outcome]]]


def register_command_subscriber(
    broker: KafkaBroker,
    settings: RegistrationSettings,
    *,
    handle_batch: HandleBatch,
    identity: RecordIdentity,
    limiter: RateLimiter,
    probe: Probe,
) -> None:
    """Consume ``registry.commands`` in batches; offsets are committed only after the batch commits."""

    @batch_subscriber(
        broker,
        settings,
        settings.topic_commands,
        group=settings.consumer_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
        linger_ms=settings.commands_linger_ms,
    )
    async def on_commands(records: Records) -> None:
        commands: list[Command] = []
        decoded, undecodable = decode_records(records)
        for record, event in decoded:
            proven = await identity.provenance(record, event)
            principal = proven.principal
            throttled = principal is not None and limiter.take(principal.key_id, principal.rate_limit) > 0
            # A bearer key accepted in transition goes no further than here.
            event = event.model_copy(update={"authorization": None}) if event.authorization else event
            commands.append(Command(event=event, principal=principal, throttled=throttled, unproven=proven.why_not))
        outcomes = await handle_batch(commands) if commands else []
        for command, outcome in zip(commands, outcomes, strict=True):  # in the order of their commands
            correlation.bind(outcome.event.correlation_id)
            log.info(
                "command handled",
                command_id=outcome.command_id,
                outcome=outcome.event.type,
                reason=outcome.event.data.get("reason") if outcome.rejected else None,
                team=command.principal.team if command.principal else None,
            )
        await dead_letter_undecodable(broker, undecodable)  # last: once, not once per retry of the batch


def register_deployment_subscriber(
    broker: KafkaBroker,
    settings: RegistrationSettings,
    *,
    deployments: DeployedEnvironments,
    identity: RecordIdentity,
    probe: Probe,
) -> None:
    """Consume ``registry.events`` (group ``registration-deployments``) for the tracker's status changes.

    Only records a service signed are believed: anyone who may produce to the topic could
    otherwise mark a version undeployed and have it deleted. Other events are skipped by their
    ``ce_type`` header, undecoded.
    """

    @batch_subscriber(
        broker,
        settings,
        settings.topic_events,
        group=settings.deployments_group,
        max_records=settings.batch_max_records,
        timeout_ms=settings.batch_timeout_ms,
        probe=probe,
        linger_ms=settings.deployments_linger_ms,
    )
    async def on_deployments(records: Records) -> None:
        seen: list[StatusSeen] = []
        for record in records:
            if _ce_type(record.headers or ()) != STATUS_CHANGED or not identity.signed(record):
                continue
            try:
                event = decode(record.value, record.headers or ())
            except EnvelopeError:
                continue  # signed, so the registry's own: nothing registration could learn from it
            change = status_seen(event.type, event.source, event.data, event.revision)
            if change is None:
                log.warning("a deployment status change registration cannot read", event_id=event.id)
                continue
            seen.append(change)
        await deployments.record(seen)


STATUS_CHANGED = messages.DEPLOYMENT_STATUS_CHANGED.encode()


def _ce_type(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    return next((bytes(value) for name, value in headers if name == "ce_type"), None)
