"""The deploy-tracker's /openapi.json documents the body of every answer, success and refusal."""

import secrets
from typing import Any

import httpx
import pytest

from deploy_tracker.app import build_app
from deploy_tracker.config import DeployTrackerSettings
from shared.problems import PROBLEM_JSON

pytestmark = pytest.mark.integration
# Served by the shared chassis, not by the tracker's routers.
CHASSIS = {"/healthz", "/readyz", "/metrics"}
WEBHOOKS = "/v1/teams/{team}/webhooks"
ROUTES = {
    ("/v1/deployments/events", "post"): "202",
    (WEBHOOKS, "post"): "201",
    (WEBHOOKS, "get"): "200",
    (WEBHOOKS + "/{webhook_id}", "delete"): "204",
    (WEBHOOKS + "/{webhook_id}/secret", "post"): "200",
    (WEBHOOKS + "/{webhook_id}/deliveries", "get"): "200",
}


@pytest.fixture(scope="module")
async def spec() -> dict[str, Any]:
    # Building the app connects to nothing (no lifespan here); the schema is served without a key.
    app = build_app(DeployTrackerSettings(event_signing_key=secrets.token_hex(32)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tracker") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in spec["paths"].items()
        if path not in CHASSIS and not path.startswith("/asyncapi")
        for method, operation in item.items()
    }


def component(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    assert "$ref" in schema, schema
    return dict(spec["components"]["schemas"][schema["$ref"].removeprefix("#/components/schemas/")])


def success_body(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    response = operations(spec)[path, method]["responses"][ROUTES[path, method]]
    return component(spec, response["content"]["application/json"]["schema"])


def test_every_route_documents_its_success_body_as_a_model(spec: dict[str, Any]) -> None:
    found = operations(spec)
    assert set(found) == set(ROUTES)
    for (path, method), operation in found.items():
        status = ROUTES[path, method]
        assert [code for code in operation["responses"] if code.startswith("2")] == [status], f"{method} {path}"
        if status == "204":
            assert not operation["responses"][status].get("content"), "a 204 has no body to document"
        else:
            assert success_body(spec, path, method)["properties"], f"{method} {path}"


def test_refusals_are_documented_as_problem_json(spec: dict[str, Any]) -> None:
    for (path, method), operation in operations(spec).items():
        statuses = {"401", "403", "422", "429"} | ({"404"} if "{webhook_id}" in path else set())
        for status in statuses:
            schema = operation["responses"][status]["content"][PROBLEM_JSON]["schema"]
            assert component(spec, schema)["title"] == "ProblemDetails", f"{method} {path} {status}"


def test_the_bridge_documents_the_report_it_takes_and_the_id_it_returns(spec: dict[str, Any]) -> None:
    body = operations(spec)["/v1/deployments/events", "post"]["requestBody"]["content"]["application/json"]
    report = component(spec, body["schema"])
    assert {"team", "name", "version", "environment", "status", "occurred_at"} <= set(report["required"])
    assert set(success_body(spec, "/v1/deployments/events", "post")["properties"]) == {"event_id", "status"}


def test_only_created_and_rotated_webhooks_document_their_secret(spec: dict[str, Any]) -> None:
    public = {"id", "team", "url", "event_types", "active", "description", "created_at", "previous_secret_expires_at"}
    for path in (WEBHOOKS, WEBHOOKS + "/{webhook_id}/secret"):
        created = success_body(spec, path, "post")
        assert set(created["properties"]) == public | {"secret"} and "secret" in created["required"], path
    listed = success_body(spec, WEBHOOKS, "get")
    assert set(listed["properties"]) == {"items"}
    assert set(component(spec, listed["properties"]["items"]["items"])["properties"]) == public


def test_deliveries_document_their_attempts_and_errors(spec: dict[str, Any]) -> None:
    listed = success_body(spec, WEBHOOKS + "/{webhook_id}/deliveries", "get")
    delivery = component(spec, listed["properties"]["items"]["items"])
    keep = {"event_id", "event_type", "status", "attempts", "next_attempt_at", "delivered_at", "dead_at", "errors"}
    assert set(delivery["properties"]) == {"id"} | keep
    error = component(spec, delivery["properties"]["errors"]["items"])
    assert set(error["properties"]) == {"at", "error"}
