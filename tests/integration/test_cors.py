"""CORS: listed browser origins get the allow headers, with credentials; any other origin gets none."""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from audit.app import build_app as build_audit
from audit.config import AuditSettings
from deploy_tracker.app import build_app as build_deploy_tracker
from deploy_tracker.config import DeployTrackerSettings
from query.app import build_app as build_query
from query.config import QuerySettings
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings
from registry_cli.config import free_port
from shared.chassis.kafka import ensure_topics
from tests.factories import ADMIN_KEY, store_admin_key
from tests.infra import Infra
from tests.integration.audit_settings import audit_settings as own_audit_settings
from tests.integration.key_owner import asking_registration_for_keys
from tests.waiting import until

pytestmark = pytest.mark.integration
CONSOLE = "https://console.example.com"
STRANGER = "https://evil.example.net"
KEY = secrets.token_hex(32)
WEBHOOK_KEYS = Fernet.generate_key().decode()
# Each service's app, allowing the given origins.
APPS: dict[str, Callable[[list[str]], FastAPI]] = {
    "registration": lambda origins: build_registration(
        RegistrationSettings(event_signing_key=KEY, cors_allowed_origins=origins)
    ),
    "query": lambda origins: build_query(QuerySettings(event_signing_key=KEY, cors_allowed_origins=origins)),
    "deploy-tracker": lambda origins: build_deploy_tracker(
        DeployTrackerSettings(event_signing_key=KEY, webhook_secret_keys=WEBHOOK_KEYS, cors_allowed_origins=origins)
    ),
    "audit": lambda origins: build_audit(
        AuditSettings(event_signing_key=KEY, signing_key=KEY, cors_allowed_origins=origins)
    ),
}
# A write a browser console makes: credentials, JSON, a correlation id and an idempotency key.
PREFLIGHT = {
    "Origin": CONSOLE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-correlation-id, idempotency-key",
}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


@pytest.mark.parametrize("service", list(APPS))
async def test_every_service_answers_a_preflight_from_a_listed_origin_before_authentication(service: str) -> None:
    # No lifespan: a preflight is answered by the outermost middleware, before any route or key.
    transport = httpx.ASGITransport(app=APPS[service]([CONSOLE]))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        response = await http.options("/v1/teams/fraud/api-keys", headers=PREFLIGHT)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == CONSOLE
    assert response.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize("service", list(APPS))
async def test_without_the_setting_no_response_carries_cors_headers(service: str) -> None:
    transport = httpx.ASGITransport(app=APPS[service]([]))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        preflight = await http.options("/v1/teams/fraud/api-keys", headers=PREFLIGHT)
        simple = await http.get("/healthz", headers={"Origin": CONSOLE})
    assert cors_headers(preflight) == {} and cors_headers(simple) == {}


def test_a_wildcard_origin_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        AuditSettings(cors_allowed_origins=["*"])


def audit_settings(infra: Infra, db_name: str) -> AuditSettings:
    """The audit service of this test's own (topics, group, database), allowing the console."""
    own = own_audit_settings(infra, db_name)
    return own.model_copy(update={"cors_allowed_origins": [CONSOLE, "http://localhost:5173"]})


@asynccontextmanager
async def listening(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served on a loopback port, with its lifespan (broker, MongoDB); yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not task.done(), "the service stopped before it started"
        return bool(server.started)

    await until(started, timeout=30, what="the service listening")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@pytest.fixture(scope="class")
async def audit_url(infra: Infra) -> AsyncIterator[str]:
    """One audit service for the class's tests (each only reads), on a database of its own."""
    settings = audit_settings(infra, f"t_{uuid.uuid4().hex[:12]}")
    await ensure_topics(settings, partitions=1)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    try:
        await store_admin_key(client[settings.mongodb_database])
        # Keys are registration's: one over the same database answers the audit's key lookups.
        async with asking_registration_for_keys(settings) as asking, listening(build_audit(asking)) as url:
            yield url
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()


class TestOnARealPort:
    async def test_a_preflight_from_a_listed_origin_gets_the_allow_headers(self, audit_url: str) -> None:
        async with httpx.AsyncClient(base_url=audit_url) as http:
            response = await http.options("/v1/audit", headers=PREFLIGHT | {"Access-Control-Request-Method": "GET"})
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == CONSOLE
        assert response.headers["access-control-allow-credentials"] == "true"
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE"}
        allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "prefer", "x-correlation-id", "idempotency-key"} <= allowed
        assert "x-registry-consistency" in allowed  # a browser's read may wait for its write

    async def test_a_credentialed_read_from_a_listed_origin_gets_its_origin_echoed(self, audit_url: str) -> None:
        headers = {"Origin": CONSOLE, "Authorization": f"Bearer {ADMIN_KEY.token}", "X-Correlation-ID": "cors-1"}
        async with httpx.AsyncClient(base_url=audit_url) as http:
            response = await http.get("/v1/audit", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == CONSOLE  # never "*" with credentials
        assert response.headers["access-control-allow-credentials"] == "true"
        exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
        assert exposed == {
            "x-correlation-id",
            "retry-after",
            "location",
            "preference-applied",
            "x-registry-consistency",
        }
        assert "Origin" in response.headers["vary"]

    async def test_a_refusal_carries_the_cors_headers_so_the_page_can_read_it(self, audit_url: str) -> None:
        async with httpx.AsyncClient(base_url=audit_url) as http:
            response = await http.get("/v1/audit", headers={"Origin": CONSOLE})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == CONSOLE

    async def test_an_origin_not_listed_gets_no_cors_headers(self, audit_url: str) -> None:
        headers = {"Origin": STRANGER, "Authorization": f"Bearer {ADMIN_KEY.token}"}
        async with httpx.AsyncClient(base_url=audit_url) as http:
            simple = await http.get("/v1/audit", headers=headers)
            preflight = await http.options("/v1/audit", headers=PREFLIGHT | {"Origin": STRANGER})
        assert simple.status_code == 200 and cors_headers(simple) == {}
        assert preflight.status_code != 200 and cors_headers(preflight) == {}
