"""``/openapi.json`` of the audit and registration apps documents what their routes answer."""

import secrets
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from audit.app import build_app as build_audit
from audit.config import AuditSettings
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings

pytestmark = pytest.mark.integration
AUDIT_ROUTES = {("/v1/audit", "get"), ("/v1/audit/verify", "get")}
KEY_ROUTES = {
    ("/v1/teams/{team}/api-keys", "post"),
    ("/v1/teams/{team}/api-keys", "get"),
    ("/v1/teams/{team}/api-keys/{key_id}", "delete"),
}


async def openapi(app: FastAPI) -> dict[str, Any]:
    """The document as clients fetch it (no lifespan: documenting needs neither Kafka nor MongoDB)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any], prefix: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        if path.startswith(prefix)
        for method, operation in item.items()
    }


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` to a component, followed."""
    ref = schema.get("$ref", "")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def success_body(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    """The resolved JSON schema of the operation's one success response; ``None`` for a 204."""
    [status] = [code for code in operation["responses"] if code.startswith("2")]
    response = operation["responses"][status]
    if status == "204":
        assert not response.get("content"), "a 204 has no body to document"
        return None
    return resolve(document, response["content"]["application/json"]["schema"])


def assert_documented(document: dict[str, Any], routes: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (path, method), operation in routes.items():
        body = success_body(document, operation)
        if body is not None:
            assert body.get("type") == "object" and body.get("properties"), f"{method} {path}: {body}"
        assert "ProblemDetails" in str(operation["responses"].get("403")), f"{method} {path}: 403 undocumented"


@pytest.fixture(scope="module")
async def audit_document() -> dict[str, Any]:
    settings = AuditSettings(chain_key=secrets.token_hex(32), event_signing_key=secrets.token_hex(32))
    return await openapi(build_audit(settings))


@pytest.fixture(scope="module")
async def registration_document() -> dict[str, Any]:
    return await openapi(build_registration(RegistrationSettings(event_signing_key=secrets.token_hex(32))))


class TestAuditApi:
    async def test_every_audit_route_documents_its_success_body_and_refusals(
        self, audit_document: dict[str, Any]
    ) -> None:
        routes = operations(audit_document, "/v1/audit")
        assert set(routes) == AUDIT_ROUTES
        assert_documented(audit_document, routes)

    async def test_a_page_of_entries_documents_each_entry_and_the_cursor(self, audit_document: dict[str, Any]) -> None:
        page = success_body(audit_document, operations(audit_document, "/v1/audit")[("/v1/audit", "get")])
        assert page is not None and {"items", "next_cursor"} <= set(page["properties"])
        entry = resolve(audit_document, page["properties"]["items"]["items"])
        assert {"id", "seq", "hash", "prev_hash", "received_at", "team", "type"} <= set(entry["properties"])
        assert entry["properties"]["received_at"]["type"] == "string"

    async def test_a_verification_documents_its_first_broken_link(self, audit_document: dict[str, Any]) -> None:
        verdict = success_body(audit_document, operations(audit_document, "/v1/audit")[("/v1/audit/verify", "get")])
        assert verdict is not None and {"ok", "entries", "chains", "scope"} <= set(verdict["required"])
        assert "first_broken" in verdict["properties"]


class TestKeyApi:
    async def test_every_key_route_documents_its_success_body_and_refusals(
        self, registration_document: dict[str, Any]
    ) -> None:
        routes = operations(registration_document, "/v1/teams/{team}/api-keys")
        assert set(routes) == KEY_ROUTES
        assert_documented(registration_document, routes)

    async def test_only_the_created_key_documents_its_secret(self, registration_document: dict[str, Any]) -> None:
        routes = operations(registration_document, "/v1/teams/{team}/api-keys")
        created = success_body(registration_document, routes[("/v1/teams/{team}/api-keys", "post")])
        listed = success_body(registration_document, routes[("/v1/teams/{team}/api-keys", "get")])
        assert created is not None and "token" in created["required"]
        assert listed is not None
        key = resolve(registration_document, listed["properties"]["items"]["items"])
        assert "key_id" in key["properties"] and "token" not in key["properties"]
        assert "secret_hash" not in key["properties"] and "secret_hash" not in created["properties"]
