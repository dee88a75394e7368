"""The query service's /openapi.json documents the body of every answer, success and refusal."""

from typing import Any

import httpx
import pytest

from query.app import build_app
from query.config import QuerySettings
from shared.problems import PROBLEM_JSON

pytestmark = pytest.mark.integration
# Served by the shared chassis, not by the query service's routers.
CHASSIS = {"/healthz", "/readyz", "/metrics", "/asyncapi.json"}


@pytest.fixture
async def spec() -> dict[str, Any]:
    # Building the app connects to nothing; the schema is served without a key.
    settings = QuerySettings(event_signing_key="k" * 64)
    transport = httpx.ASGITransport(app=build_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def component(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    assert "$ref" in schema, schema
    name = schema["$ref"].removeprefix("#/components/schemas/")
    return dict(spec["components"]["schemas"][name])


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, ops in spec["paths"].items() if path not in CHASSIS for method, op in ops.items()
    ]


def test_every_route_documents_its_success_body_as_a_model(spec: dict[str, Any]) -> None:
    found = operations(spec)
    assert len(found) == 9 and all(path.startswith("/v1/") for path, _, _ in found)
    for path, method, op in found:
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert component(spec, schema)["properties"], f"{method} {path}"


def test_pages_and_their_extra_fields_are_typed(spec: dict[str, Any]) -> None:
    def body(path: str) -> dict[str, Any]:
        return component(spec, spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"])

    deployments = body("/v1/models/{team}/{name}/versions/{version}/deployments")
    assert {"items", "next_cursor", "status", "environments"} <= set(deployments["properties"])
    report = component(spec, deployments["properties"]["items"]["items"])
    assert {"id", "outcome", "environment", "status", "occurred_at", "received_at"} <= set(report["properties"])
    event = component(spec, body("/v1/models/{team}/{name}/history")["properties"]["items"]["items"])
    assert set(event["properties"]) == {"event_id", "type", "time", "correlation_id", "causation_id", "data"}
    assert body("/v1/meta")["properties"]["limits"]


def test_refusals_are_documented_as_problem_json(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        statuses = {"401", "403", "429"} | ({"404"} if "{name}" in path or "{model_id}" in path else set())
        for status in statuses:
            schema = op["responses"][status]["content"][PROBLEM_JSON]["schema"]
            assert component(spec, schema)["title"] == "ProblemDetails", f"{method} {path} {status}"
