"""Refusals say what would allow them: the setting or scope it takes, or the service that serves the route."""

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from deploy_tracker.app import build_app as build_deploy_tracker
from deploy_tracker.config import DeployTrackerSettings
from registration.config import RegistrationSettings
from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from registry_contract.auth import Principal
from shared.chassis import route_owners
from shared.chassis.problems import PROBLEM_JSON
from shared.chassis.settings import CommonSettings
from tests.factories import register_event
from tests.routes import APPS, documented_routes

pytestmark = pytest.mark.unit
FRAUD_ADMIN = Principal(key_id="fa000001", team="fraud", scopes=frozenset({"team:admin"}))
CHASSIS = ("/docs", "/openapi.json", "/asyncapi.json", "/healthz", "/readyz", "/metrics")


class OneKey:
    """A key store that takes any token as the key of ``principal`` (only ``authenticate`` is asked here)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    async def authenticate(self, token: str | None) -> Principal | None:
        return self.principal if token else None


def tracker(principal: Principal, **settings: Any) -> FastAPI:
    """The deploy-tracker's app (no lifespan: these refusals come before any database), keyed to ``principal``."""
    app = build_deploy_tracker(
        DeployTrackerSettings(
            event_signing_key=secrets.token_hex(32), webhook_secret_keys=Fernet.generate_key().decode(), **settings
        )
    )
    app.state.guard.keystore = OneKey(principal)
    return app


@pytest.fixture
async def as_fraud_admin() -> AsyncIterator[httpx.AsyncClient]:
    app = tracker(FRAUD_ADMIN, allow_private_webhooks=False, rate_limit_per_second=0.001, rate_limit_burst=2)
    headers = {"Authorization": "Bearer anything"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers) as http:
        yield http


class TestTheSettingIsNamed:
    @pytest.mark.parametrize(
        ("settings", "field", "value"),
        [
            (DeployTrackerSettings, "allow_private_webhooks", "true"),
            (RegistrationSettings, "max_keys_per_team", "7"),
            (RegistrationSettings, "command_rate_per_second", "7"),
            (CommonSettings, "max_body_bytes", "7"),
        ],
    )
    def test_the_name_a_refusal_gives_is_the_variable_the_service_reads(
        self, settings: type[CommonSettings], field: str, value: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(settings.env_name(field), value)
        assert str(getattr(settings(), field)).lower() in (value, f"{value}.0")

    async def test_a_private_webhook_target_names_the_setting_that_allows_it(
        self, as_fraud_admin: httpx.AsyncClient
    ) -> None:
        refused = await as_fraud_admin.post(
            "/v1/teams/fraud/webhooks", json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
        )
        problem = refused.json()
        assert (refused.status_code, problem["type"], problem["title"]) == (
            422,
            "urn:registry:problem:invalid",
            "Invalid request",
        )
        assert "not public" in problem["detail"] and "DEPLOY_TRACKER_ALLOW_PRIVATE_WEBHOOKS=true" in problem["detail"]

    async def test_a_body_over_the_limit_names_the_limit_setting(self) -> None:
        app = APPS["registration"]()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            refused = await http.post("/v1/models/fraud/card/versions", content=b"x" * (256 * 1024 + 1))
        assert refused.status_code == 413 and refused.json()["type"] == "urn:registry:problem:too_large"
        assert "MAX_BODY_BYTES" in refused.json()["detail"]

    async def test_a_key_over_the_rate_limit_is_told_which_settings_set_it(
        self, as_fraud_admin: httpx.AsyncClient
    ) -> None:
        for _ in range(2):  # the burst: refused for another reason, each takes a token
            assert (await as_fraud_admin.get("/v1/teams/risk/webhooks")).status_code == 403
        limited = await as_fraud_admin.get("/v1/teams/risk/webhooks")
        assert limited.status_code == 429 and limited.json()["type"] == "urn:registry:problem:rate_limited"
        assert "RATE_LIMIT_PER_SECOND" in limited.json()["detail"] and "RATE_LIMIT_BURST" in limited.json()["detail"]

    async def test_a_key_over_its_own_rate_limit_is_told_it_is_the_keys(self) -> None:
        own = Principal(key_id="fa000002", team="fraud", scopes=frozenset({"team:admin"}), rate_limit=(0.001, 1))
        transport = httpx.ASGITransport(app=tracker(own))
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"X-API-Key": "k"}) as http:
            await http.get("/v1/teams/risk/webhooks")
            limited = await http.get("/v1/teams/risk/webhooks")
        assert limited.status_code == 429 and "this key's own rate limit of 0.001/s" in limited.json()["detail"]

    async def test_commands_faster_than_their_limit_name_the_command_rate_settings(self) -> None:
        writer = Principal(key_id="fw000001", team="fraud", scopes=frozenset({"models:write"}))
        throttled = Command(register_event("fraud", "card"), writer, throttled=True)
        [outcome] = await handle_commands([throttled], repo=InMemoryRepository(), artifact_schemes=["s3"])
        assert outcome.event.data["reason"] == "rate_limited"
        assert "REGISTRATION_COMMAND_RATE_PER_SECOND" in outcome.event.data["message"]
        own = Principal(key_id="fw000002", team="fraud", scopes=frozenset({"models:write"}), rate_limit=(1.0, 1))
        over = Command(register_event("fraud", "card"), own, throttled=True)
        [outcome] = await handle_commands([over], repo=InMemoryRepository(), artifact_schemes=["s3"])
        assert "this key sent commands faster than its own rate limit" in outcome.event.data["message"]


class TestTheScopeIsNamed:
    async def test_managing_another_teams_webhooks_names_the_scope_it_takes(
        self, as_fraud_admin: httpx.AsyncClient
    ) -> None:
        refused = await as_fraud_admin.get("/v1/teams/risk/webhooks")
        assert refused.status_code == 403 and refused.json()["type"] == "urn:registry:problem:forbidden"
        assert "team:admin in 'risk'" in refused.json()["detail"] and "platform:admin" in refused.json()["detail"]

    async def test_a_command_for_another_team_names_the_scope_that_acts_for_any(self) -> None:
        risk = Principal(key_id="rw000001", team="risk", scopes=frozenset({"models:write"}))
        command = Command(register_event("fraud", "card"), risk)
        [outcome] = await handle_commands([command], repo=InMemoryRepository(), artifact_schemes=["s3"])
        assert outcome.event.data["reason"] == "forbidden" and "platform:admin" in outcome.event.data["message"]


class TestARouteOfAnotherService:
    def test_every_route_of_the_api_is_owned_by_the_service_that_serves_it(self) -> None:
        routes = [(s, m, p) for s, m, p in documented_routes() if not p.startswith(CHASSIS)]
        assert routes and all(route_owners.owner(m, p) == s for s, m, p in routes), [
            (s, m, p, route_owners.owner(m, p)) for s, m, p in routes if route_owners.owner(m, p) != s
        ]

    @pytest.mark.parametrize(
        ("service", "method", "path", "status", "serving"),
        [
            ("registration", "POST", "/v1/deployments/events", 404, "deploy-tracker"),
            ("registration", "GET", "/v1/models/fraud/card/versions", 405, "query"),
            ("query", "PUT", "/v1/models/fraud/card/aliases/champion", 404, "registration"),
            ("query", "GET", "/v1/teams/fraud/webhooks", 404, "deploy-tracker"),
            ("deploy-tracker", "GET", "/v1/audit", 404, "audit"),
            ("audit", "GET", "/v1/models/fraud/card", 404, "query"),
        ],
    )
    async def test_a_request_sent_to_the_wrong_service_is_told_which_serves_it(
        self, service: str, method: str, path: str, status: int, serving: str
    ) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APPS[service]()), base_url="http://t") as http:
            refused = await http.request(method, path)
        problem = refused.json()
        assert (refused.status_code, refused.headers["content-type"]) == (status, PROBLEM_JSON)
        assert problem["type"] == "urn:registry:problem:" + ("not_found" if status == 404 else "method_not_allowed")
        assert problem["detail"].startswith(f"the {service} service does not serve {method} {path}: ")
        assert f"the {serving} service does" in problem["detail"]

    async def test_a_route_no_service_serves_is_refused_naming_only_this_service(self) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APPS["audit"]()), base_url="http://t") as http:
            refused = await http.get("/v1/nothing-here")
        assert refused.status_code == 404 and refused.json()["title"] == "Not found"
        assert refused.json()["detail"] == "the audit service does not serve GET /v1/nothing-here"


def test_the_wrong_service_refusal_repeats_a_bounded_method_and_path() -> None:
    # Both come from the caller: a request line can make them long.
    detail = route_owners.unserved("registration", "X" * 5_000, "/v1/" + "a" * 5_000)
    assert len(detail) < route_owners.MAX_METHOD_SHOWN + route_owners.MAX_PATH_SHOWN + 100
