"""Services in-process with quick restarts, a fault to inject into their background work, and what /readyz says."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import httpx
from cryptography.fernet import Fernet
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect

from audit.app import build_app as build_audit
from deploy_tracker.app import build_app as build_deploy_tracker
from deploy_tracker.config import DeployTrackerSettings
from query.app import build_app as build_query
from query.config import QuerySettings
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings
from shared.chassis.kafka import ensure_topics
from shared.chassis.settings import CommonSettings
from shared.chassis.supervision import Background
from tests.factories import ADMIN_KEY, store_admin_key
from tests.infra import Infra
from tests.integration.audit_settings import audit_settings
from tests.waiting import until

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
# Restart quickly, and count a restarted task as up once it has run half a second.
QUICK_RESTARTS = {
    "background_task_restart_seconds": 0.05,
    "background_task_restart_max_seconds": 0.2,
    "background_task_settle_seconds": 0.5,
}
# What each service runs in the background: the chassis' tasks and the service's own.
CHASSIS = {"access-events", "readiness", "key-evictions"}
TASKS = {
    "registration": {*CHASSIS, "consumer-lag", "outbox-relay", "deployments-bootstrap"},
    "query": {*CHASSIS, "projection", "search-projection", "feed-cache", "mcp"},
    "deploy-tracker": {
        *CHASSIS,
        "consumer-lag",
        "deploy-outbox-relay",
        "webhook-deliveries",
        "known-versions-catch-up",
    },
    "audit": {*CHASSIS, "consumer-lag"},
}


def shared_settings(infra: Infra, db_name: str) -> dict[str, Any]:
    """Settings every service of one test shares: endpoints, its own topics and database, quick restarts."""
    suffix, env = uuid.uuid4().hex[:8], infra.env()
    return {
        "kafka_bootstrap_servers": infra.kafka_bootstrap,
        "mongodb_uri": infra.mongodb_uri,
        "mongodb_database": db_name,
        "kafka_enable_idempotence": infra.idempotence,
        "kafka_session_timeout_ms": int(env["KAFKA_SESSION_TIMEOUT_MS"]),
        "kafka_heartbeat_interval_ms": int(env["KAFKA_HEARTBEAT_INTERVAL_MS"]),
        "kafka_fetch_max_wait_ms": int(env["KAFKA_FETCH_MAX_WAIT_MS"]),
        "topic_commands": f"commands-{suffix}",
        "topic_events": f"events-{suffix}",
        "topic_deploy": f"deploy-{suffix}",
        "topic_access": f"access-{suffix}",
        "lag_sample_seconds": 1,
        "event_signing_key": infra.signing_key,
        **QUICK_RESTARTS,
    }


def service_settings(service: str, infra: Infra, db_name: str) -> CommonSettings:
    common = shared_settings(infra, db_name)
    group = f"{service}-{uuid.uuid4().hex[:8]}"
    if service == "registration":
        return RegistrationSettings(**common, consumer_group=group, relay_interval_seconds=0.05)
    if service == "query":
        return QuerySettings(**common)
    if service == "deploy-tracker":
        keys = Fernet.generate_key().decode()
        return DeployTrackerSettings(
            **common, consumer_group=group, webhook_group=f"{group}-w", webhook_secret_keys=keys
        )
    return audit_settings(infra, db_name).model_copy(update=QUICK_RESTARTS)  # its topics, group and chain key


async def registration_with_admin(infra: Infra, db_name: str) -> RegistrationSettings:
    """Registration's settings, its topics made, and the admin key stored in its database."""
    settings = service_settings("registration", infra, db_name)
    assert isinstance(settings, RegistrationSettings)
    await ensure_topics(settings, partitions=1)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name])
    await client.close()
    return settings


BUILD: dict[str, Callable[[Any], FastAPI]] = {
    "registration": build_registration,
    "query": build_query,
    "deploy-tracker": build_deploy_tracker,
    "audit": build_audit,
}


class Outage:
    """A fault injected into background work: what it breaks raises while the outage lasts."""

    def __init__(self) -> None:
        self.on = False
        self.raised = 0

    def fail(self) -> None:
        if self.on:
            self.raised += 1
            raise AutoReconnect("connection reset by peer (injected)")

    def breaking(self, run: Background) -> Background:
        """``run``, failing at its start while the outage lasts."""

        async def broken() -> None:
            self.fail()
            await run()

        return broken


def restarts(task: str) -> float:
    return REGISTRY.get_sample_value("registry_background_task_restarts_total", {"task": task}) or 0.0


def task_up(task: str) -> float | None:
    return REGISTRY.get_sample_value("registry_background_task_up", {"task": task})


@contextlib.asynccontextmanager
async def running(app: FastAPI, base_url: str, headers: Mapping[str, str] = ADMIN) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=dict(headers), timeout=10) as http:
            yield http


async def tasks_down(http: httpx.AsyncClient) -> set[str]:
    """The background tasks ``/readyz`` names as down (empty when it answers 200)."""
    response = await http.get("/readyz")
    if response.status_code == 200:
        return set()
    assert response.status_code == 503, response.text
    return {error["task"] for error in response.json()["errors"] if "task" in error}


async def wait_down(http: httpx.AsyncClient, names: Iterable[str]) -> None:
    wanted = set(names)

    async def named() -> bool:
        return wanted <= await tasks_down(http)

    await until(named, what=f"/readyz naming {sorted(wanted)} as down", interval=0.02)


async def wait_ready(http: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await http.get("/readyz")).status_code == 200

    await until(ready, timeout=30, what="/readyz answering 200 again")
