"""``build_app(settings)``: the one place where the registration service is wired together."""

from __future__ import annotations

from fastapi import FastAPI

from registration import curation_routes, internal_routes, keys_routes, metrics, routes
from registration.config import RegistrationSettings
from registration.group_commit import GroupCommit
from registration.handlers import Command, Outcome, handle_commands
from registration.key_events import announce_unannounced
from registration.repository import MongoRepository
from registration.subscribers import register_command_subscriber
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import (
    API_KEYS,
    INDEXES,
    MODEL_VERSIONS,
    MODELS,
    OUTBOX,
    RELAY_CHECKPOINTS,
    RETIRED_INDEXES,
    SHARES,
    ensure_indexes,
    make_client,
    pinger,
)
from shared.chassis.ratelimit import RateLimiter
from shared.chassis.verifiers import VerifierBox, sealed_verifiers
from shared.outbox.changes import ChangeLog
from shared.outbox.relay import OutboxRelay, kafka_publisher
from shared.outbox.rows import writer_id


def build_app(settings: RegistrationSettings) -> FastAPI:
    """Wire the Kafka consumer, the outbox relay and the HTTP write API."""
    client = make_client(settings)
    broker = make_broker(settings)
    # Keys' signature verifiers are sealed in their records; the other services fetch them here.
    verifier_box = VerifierBox.of(settings)
    service = service_app(
        settings=settings,
        client=client,
        broker=broker,
        consumer_groups={settings.consumer_group: [settings.topic_commands]},
        owns_keys=True,  # API keys are registration's; the other services ask it (internal_routes)
        verifiers=sealed_verifiers(verifier_box),
    )
    repo = MongoRepository(client, service.db, writer=writer_id())
    relay = OutboxRelay(
        repo=repo,
        publish=kafka_publisher(broker, settings.topic_events, service.signer),
        batch_size=settings.relay_batch_size,
        interval=settings.relay_interval_seconds,
        name="outbox",
    )

    # Key changes are announced through the same outbox as the command outcomes (key_events).
    changes = ChangeLog(repo, client, wake=relay.notify)

    async def handle_batch(commands: list[Command]) -> list[Outcome]:
        outcomes = await handle_commands(
            commands,
            repo=repo,
            artifact_schemes=settings.artifact_schemes,
            retries=settings.commit_retries,
            max_shares=settings.max_shares_per_model,
        )
        relay.notify()
        metrics.observe(outcomes, commands, service.access, topic=settings.topic_commands)
        return outcomes

    # HTTP writes arriving together share one transaction, as the Kafka path's polls do.
    handle_one = GroupCommit(handle_batch, max_commands=settings.http_group_commit_max).submit

    async def create_indexes() -> None:
        await ensure_indexes(
            service.db,
            INDEXES,
            [MODELS, MODEL_VERSIONS, OUTBOX, RELAY_CHECKPOINTS, SHARES, API_KEYS],
            retired=RETIRED_INDEXES,
        )
        await repo.backfill_feed_keys()

    async def announce_keys() -> None:
        await announce_unannounced(changes, service.db[API_KEYS])

    service.on_start(create_indexes)
    service.on_start(announce_keys)
    service.in_background("outbox-relay", relay.run)
    register_command_subscriber(
        broker,
        settings,
        handle_batch=handle_batch,
        identity=RecordIdentity.of(settings, keystore=service.keystore, signer=service.signer),
        limiter=RateLimiter(rate=settings.command_rate_per_second, burst=settings.command_burst),
        probe=pinger(client),
    )
    service.app.state.handle_one = handle_one
    # Events: every replica reads key revocations to evict its key cache (shared.chassis.key_evictions).
    asyncapi.serve(service.app, settings, consumes=["commands", "events"], publishes=["events", "access"])
    service.app.include_router(routes.router)
    service.app.include_router(curation_routes.router)
    service.app.include_router(keys_routes.router)
    service.app.include_router(internal_routes.router)
    service.app.state.verifier_box = verifier_box
    service.app.state.relay = relay
    service.app.state.repo = repo
    service.app.state.changes = changes
    return service.app
