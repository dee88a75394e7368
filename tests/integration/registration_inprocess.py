"""Registration in-process over the session's broker and database: its settings, the app, a client."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from registration.app import build_app
from registration.config import RegistrationSettings
from shared.chassis.kafka import ensure_topics
from shared.chassis.verifiers import INTERNAL_TOKEN_HEADER, internal_token
from tests.factories import ADMIN_KEY, store_admin_key
from tests.infra import Infra

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
NO_TRACKER = "http://127.0.0.1:9"  # nothing listens: the deployments bootstrap keeps retrying, unheard


async def registration_settings(infra: Infra, db_name: str, **overrides: Any) -> RegistrationSettings:
    """Settings of a registration of its own: topics and groups made for the test, the admin key stored."""
    suffix, env = uuid.uuid4().hex[:8], infra.env()
    settings = RegistrationSettings(
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        mongodb_uri=infra.mongodb_uri,
        mongodb_database=db_name,
        kafka_enable_idempotence=infra.idempotence,
        kafka_session_timeout_ms=int(env["KAFKA_SESSION_TIMEOUT_MS"]),
        kafka_heartbeat_interval_ms=int(env["KAFKA_HEARTBEAT_INTERVAL_MS"]),
        kafka_fetch_max_wait_ms=int(env["KAFKA_FETCH_MAX_WAIT_MS"]),
        topic_commands=f"commands-{suffix}",
        topic_events=f"events-{suffix}",
        topic_deploy=f"deploy-{suffix}",
        topic_access=f"access-{suffix}",
        consumer_group=f"registration-{suffix}",
        deployments_group=f"registration-deployments-{suffix}",
        relay_interval_seconds=0.05,
        event_signing_key=infra.signing_key,
        **({"deploy_tracker_url": NO_TRACKER} | overrides),
    )
    await ensure_topics(settings, partitions=1)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name], signing_key=infra.signing_key)
    await client.close()
    return settings


def service_headers(settings: RegistrationSettings) -> dict[str, str]:
    """The services' credential on internal routes."""
    return {INTERNAL_TOKEN_HEADER: internal_token(settings)}


@contextlib.asynccontextmanager
async def running(settings: RegistrationSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The service started (its lifespan), and a client of it acting as the platform admin."""
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registration", headers=ADMIN) as client:
            yield client
