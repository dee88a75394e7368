"""``build_app(settings)``: the one place where the registration service is wired together."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid

from fastapi import FastAPI

from registration import metrics
from registration.config import RegistrationSettings
from registration.handlers import Command, Outcome, event_from_outbox, handle_commands
from registration.relay import OutboxRelay
from registration.repository import MongoRepository
from registration.routes import build_router
from registration.subscribers import register_command_subscriber
from shared.auth import Principal
from shared.http_app import service_app
from shared.http_auth import http_principal
from shared.kafka import make_broker
from shared.mongo import (
    API_KEYS,
    MODEL_VERSIONS,
    MODELS,
    OUTBOX,
    RELAY_CHECKPOINTS,
    Document,
    database,
    ensure_indexes,
    make_client,
)


async def resolve_principal(_authorization: str | None) -> Principal:
    """Seam for access control (next issue): every command and request gets a principal."""
    return Principal.anonymous()


def build_app(settings: RegistrationSettings) -> FastAPI:
    """Wire the Kafka consumer, the outbox relay and the HTTP write API."""
    client = make_client(settings)
    db = database(client, settings)
    repo = MongoRepository(client, db, writer=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    broker = make_broker(settings)

    async def publish(rows: list[Document]) -> None:
        futures = []
        for row in rows:
            value, headers = event_from_outbox(row).to_kafka()
            futures.append(
                await broker.publish(
                    value,
                    topic=settings.topic_events,
                    key=row["key"].encode(),
                    headers={k: v.decode() for k, v in headers},
                    no_confirm=True,
                )
            )
        await asyncio.gather(*futures)
        metrics.OUTBOX_PUBLISHED.inc(len(rows))

    relay = OutboxRelay(
        repo=repo,
        publish=publish,
        batch_size=settings.relay_batch_size,
        interval=settings.relay_interval_seconds,
    )

    async def handle_batch(commands: list[Command]) -> list[Outcome]:
        outcomes = await handle_commands(
            commands, repo=repo, artifact_schemes=settings.artifact_schemes, retries=settings.commit_retries
        )
        relay.notify()
        _observe(outcomes)
        return outcomes

    async def handle_one(command: Command) -> Outcome:
        return (await handle_batch([command]))[0]

    register_command_subscriber(broker, settings, handle_batch=handle_batch, resolve_principal=resolve_principal)

    relay_task: list[asyncio.Task[None]] = []

    async def start() -> None:
        await ensure_indexes(db, [MODELS, MODEL_VERSIONS, OUTBOX, RELAY_CHECKPOINTS, API_KEYS])
        relay_task.append(asyncio.create_task(relay.run(), name="outbox-relay"))

    async def stop() -> None:
        for task in relay_task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = service_app(title="registration", client=client, broker=broker, on_start=[start], on_stop=[stop])
    app.include_router(build_router(handle_one=handle_one, principal=http_principal))
    app.state.relay = relay
    app.state.repo = repo
    return app


def _observe(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.replayed:
            continue
        reason = outcome.event.data.get("reason", "") if outcome.rejected else ""
        command_type = outcome.event.data.get("command_type", "") if outcome.rejected else outcome.event.type
        metrics.COMMANDS.labels(command_type, "rejected" if outcome.rejected else "accepted", reason).inc()
        if outcome.version is not None and outcome.event.type.endswith("registered"):
            metrics.REGISTRATIONS.labels(outcome.version["team"], outcome.version["framework"]).inc()
