"""``build_app(settings)``: the one place where the registration service is wired together."""

from __future__ import annotations

from fastapi import FastAPI

from registration import keys_routes, metrics, routes
from registration.config import RegistrationSettings
from registration.handlers import Command, Outcome, handle_commands
from registration.repository import MongoRepository
from registration.subscribers import register_command_subscriber
from shared import asyncapi, messages
from shared.access import ACCESS_DENIED, AUTH_FAILURES, RATE_LIMITED, AccessLog
from shared.http_app import service_app
from shared.kafka import make_broker
from shared.mongo import (
    API_KEYS,
    MODEL_VERSIONS,
    MODELS,
    OUTBOX,
    RELAY_CHECKPOINTS,
    SHARES,
    ensure_indexes,
    make_client,
    pinger,
)
from shared.outbox_relay import OutboxRelay, kafka_publisher
from shared.outbox_rows import writer_id
from shared.ratelimit import RateLimiter

_DENIAL_EVENTS = {
    "unauthenticated": messages.ACCESS_AUTH_FAILED,
    "forbidden": messages.ACCESS_DENIED,
    "rate_limited": messages.ACCESS_RATE_LIMITED,
}


def build_app(settings: RegistrationSettings) -> FastAPI:
    """Wire the Kafka consumer, the outbox relay and the HTTP write API."""
    client = make_client(settings)
    broker = make_broker(settings)
    service = service_app(
        settings=settings,
        client=client,
        broker=broker,
        consumer_groups={settings.consumer_group: [settings.topic_commands]},
    )
    repo = MongoRepository(client, service.db, writer=writer_id())
    relay = OutboxRelay(
        repo=repo,
        publish=kafka_publisher(broker, settings.topic_events, service.signer),
        batch_size=settings.relay_batch_size,
        interval=settings.relay_interval_seconds,
        name="outbox",
    )

    async def handle_batch(commands: list[Command]) -> list[Outcome]:
        outcomes = await handle_commands(
            commands, repo=repo, artifact_schemes=settings.artifact_schemes, retries=settings.commit_retries
        )
        relay.notify()
        _observe(outcomes, commands, service.access, topic=settings.topic_commands)
        return outcomes

    async def handle_one(command: Command) -> Outcome:
        return (await handle_batch([command]))[0]

    async def create_indexes() -> None:
        await ensure_indexes(service.db, [MODELS, MODEL_VERSIONS, OUTBOX, RELAY_CHECKPOINTS, SHARES, API_KEYS])

    service.on_start(create_indexes)
    service.in_background("outbox-relay", relay.run)
    register_command_subscriber(
        broker,
        settings,
        handle_batch=handle_batch,
        resolve_principal=service.keystore.authenticate,
        limiter=RateLimiter(rate=settings.command_rate_per_second, burst=settings.command_burst),
        probe=pinger(client),
    )
    service.app.state.handle_one = handle_one
    asyncapi.serve(service.app, settings, consumes=["commands"], publishes=["events", "access"])
    service.app.include_router(routes.router)
    service.app.include_router(keys_routes.router)
    service.app.state.relay = relay
    service.app.state.repo = repo
    return service.app


def _observe(outcomes: list[Outcome], commands: list[Command], access: AccessLog, *, topic: str) -> None:
    """Count outcomes, and record refused commands as access events (every denial is one)."""
    # Outcomes come in the order of their commands. (Not matched by ce_id: two teams may use one.)
    for command, outcome in zip(commands, outcomes, strict=True):
        if outcome.replayed:
            continue
        reason = outcome.event.data.get("reason", "") if outcome.rejected else ""
        # ce_type comes from the sender: anything but a contract command type is counted as "other".
        command_type = command.event.type if command.event.type in messages.COMMAND_TYPES else "other"
        metrics.COMMANDS.labels(command_type, "rejected" if outcome.rejected else "accepted", reason).inc()
        if outcome.version is not None and outcome.event.type == messages.MODEL_VERSION_REGISTERED:
            metrics.REGISTRATIONS.labels(outcome.version["team"], outcome.version["framework"]).inc()
        principal = command.principal
        # The sender's authenticated team, never the team named in the command: labels stay bounded.
        team = principal.team if principal else "anonymous"
        if outcome.rejected:
            metrics.REJECTIONS.labels(team, reason).inc()
        if reason in _DENIAL_EVENTS:
            if reason == "unauthenticated":
                AUTH_FAILURES.labels(access.service, "command").inc()
            elif reason == "forbidden":
                ACCESS_DENIED.labels(access.service, team, "command").inc()
            else:
                RATE_LIMITED.labels(access.service, team).inc()
            access.record(
                _DENIAL_EVENTS[reason],
                principal=principal,
                method="KAFKA",
                path=topic,
                status={"unauthenticated": 401, "forbidden": 403}.get(reason, 429),
                reason=reason,
                resource_team=outcome.event.data.get("team"),
            )
