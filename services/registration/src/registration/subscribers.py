"""Kafka adapter: decode a batch of command records, handle them, dead-letter the undecodable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from faststream.kafka import KafkaBroker

from registration.config import RegistrationSettings
from registration.handlers import Command, Outcome
from shared.chassis.consuming import Probe, Records, batch_subscriber
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import decode_or_dead_letter
from shared.chassis.ratelimit import RateLimiter
from shared.contract import correlation

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
    )
    async def on_commands(records: Records) -> None:
        commands: list[Command] = []
        for record in records:
            event = await decode_or_dead_letter(broker, record)
            if event is None:
                continue
            proven = await identity.provenance(record, event)
            principal = proven.principal
            throttled = principal is not None and limiter.take(principal.key_id, principal.rate_limit) > 0
            # A bearer key accepted in transition goes no further than here.
            event = event.model_copy(update={"authorization": None}) if event.authorization else event
            commands.append(Command(event=event, principal=principal, throttled=throttled, unproven=proven.why_not))
        if not commands:
            return
        outcomes = await handle_batch(commands)
        for command, outcome in zip(commands, outcomes, strict=True):  # in the order of their commands
            correlation.bind(outcome.event.correlation_id)
            log.info(
                "command handled",
                command_id=outcome.command_id,
                outcome=outcome.event.type,
                reason=outcome.event.data.get("reason") if outcome.rejected else None,
                team=command.principal.team if command.principal else None,
            )
