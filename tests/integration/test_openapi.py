"""Each service's /openapi.json documents what every route takes and answers, success and refusal.

Built from the apps themselves (no lifespan: documenting needs neither Kafka nor MongoDB), as
clients fetch it: a client generated from it gets a typed result for every call.
"""

from typing import Any

import httpx
import pytest

from shared.chassis.problems import PROBLEM_JSON
from tests.routes import APPS

pytestmark = pytest.mark.integration
# The routes of the chassis (health, metrics, the AsyncAPI document) are not the services' API.
CHASSIS = {"/healthz", "/readyz", "/metrics", "/asyncapi.json"}
REFUSALS = {"401", "403", "429"}  # every /v1 route needs a key, may lack its scope, is rate-limited
NO_SCOPE = {("/v1/whoami", "get")}  # any valid caller may ask who it is: no 403
MODEL, VERSIONS = "/v1/models/{team}/{name}", "/v1/models/{team}/{name}/versions"
KEYS, WEBHOOKS = "/v1/teams/{team}/api-keys", "/v1/teams/{team}/webhooks"
RULES = "/v1/teams/{team}/trust-rules"
SIGNING_KEYS = "/v1/teams/{team}/signing-keys"
# Every route of the HTTP API and its success status.
ROUTES = {
    "registration": {
        (VERSIONS, "post"): "201",
        (VERSIONS + "/{version}", "patch"): "200",
        (VERSIONS + "/{version}/lifecycle", "post"): "200",
        (MODEL + "/shares/{other_team}", "put"): "200",
        (MODEL + "/shares/{other_team}", "delete"): "204",
        (MODEL, "patch"): "200",
        (MODEL + "/aliases/{alias}", "put"): "200",
        (MODEL + "/aliases/{alias}", "delete"): "204",
        (VERSIONS + "/{version}/approval", "put"): "200",
        (VERSIONS + "/{version}", "delete"): "204",
        (KEYS, "post"): "201",
        (KEYS, "get"): "200",
        (KEYS + "/{key_id}", "delete"): "204",
        (RULES, "post"): "201",
        (RULES, "get"): "200",
        (RULES + "/{rule_id}", "delete"): "204",
        (SIGNING_KEYS, "post"): "201",
        (SIGNING_KEYS, "get"): "200",
        (SIGNING_KEYS + "/{key_id}", "delete"): "204",
        ("/v1/whoami", "get"): "200",
    },
    "query": {
        (path, "get"): "200"
        for path in (
            "/v1/meta",
            "/v1/models",
            "/v1/models/id/{model_id}",
            "/v1/teams/{team}/models",
            "/v1/teams/{team}/versions",
            "/v1/teams/{team}/deployments",
            MODEL,
            MODEL + "/deployments",
            MODEL + "/history",
            MODEL + "/aliases",
            MODEL + "/shares",
            MODEL + "/compare",
            MODEL + "/aliases/{alias}/history",
            MODEL + "/environments/{environment}/timeline",
            MODEL + "/timeline",
            VERSIONS,
            VERSIONS + "/{version}",
            VERSIONS + "/{version}/deployments",
            VERSIONS + "/{version}/lineage",
            "/v1/assistant/search",
            "/v1/assistant/documents",
            "/v1/assistant/models/{team}/{name}/card",
        )
    },
    "deploy-tracker": {
        ("/v1/deployments/events", "post"): "202",
        (WEBHOOKS, "post"): "201",
        (WEBHOOKS, "get"): "200",
        (WEBHOOKS + "/{webhook_id}", "delete"): "204",
        (WEBHOOKS + "/{webhook_id}/secret", "post"): "200",
        (WEBHOOKS + "/{webhook_id}/deliveries", "get"): "200",
    },
    "audit": {
        ("/v1/audit", "get"): "200",
        ("/v1/audit/verify", "get"): "200",
        ("/v1/audit/public-keys", "get"): "200",
        ("/v1/audit/evidence/{team}/{name}/{version}", "get"): "200",
    },
}
# A second success a request can ask for: the bridge answers the tracker's outcome on `Prefer: wait`.
ALSO_SUCCEEDS = {("/v1/deployments/events", "post"): "200"}


async def openapi(service: str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=APPS[service]())
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        if path not in CHASSIS
        for method, operation in item.items()
    }


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    assert "$ref" in schema, schema  # a named model, not an anonymous object
    found: dict[str, Any] = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return found


def success_body(
    document: dict[str, Any], operation: dict[str, Any], status: str, *, also: str | None = None
) -> dict[str, Any] | None:
    """The schema of the operation's success response ``status`` (and no other but ``also``); ``None`` for a 204."""
    successes = sorted(code for code in operation["responses"] if code.startswith("2"))
    assert successes == sorted(code for code in (status, also) if code)
    response = operation["responses"][status]
    if status == "204":
        assert not response.get("content"), "a 204 has no body to document"
        return None
    return resolve(document, response["content"]["application/json"]["schema"])


@pytest.mark.parametrize("service", list(APPS))
async def test_every_route_documents_its_success_body_and_refusals(service: str) -> None:
    # A route typed as returning dict[str, Any] documents no response body in /openapi.json.
    document = await openapi(service)
    found = operations(document)
    assert set(found) == set(ROUTES[service])
    for (path, method), operation in found.items():
        also = ALSO_SUCCEEDS.get((path, method))
        body = success_body(document, operation, ROUTES[service][path, method], also=also)
        assert body is None or body["properties"], f"{method} {path}"
        if also is not None:
            assert success_body(document, operation, also, also=ROUTES[service][path, method]), f"{method} {path}"
        for status in REFUSALS - ({"403"} if (path, method) in NO_SCOPE else set()):
            problem = operation["responses"][status]["content"][PROBLEM_JSON]["schema"]
            assert resolve(document, problem)["title"] == "ProblemDetails", f"{method} {path} {status}"
        if "{name}" in path or "{model_id}" in path:  # a model that is absent or hidden
            assert "404" in operation["responses"], f"{method} {path}"


async def test_typed_bodies_replace_hand_spliced_schemas() -> None:
    document = await openapi("registration")
    register = document["paths"]["/v1/models/{team}/{name}/versions"]["post"]
    body = resolve(document, register["requestBody"]["content"]["application/json"]["schema"])
    assert {"version", "framework", "artifact_uri"} <= set(body["required"])
    assert "team" not in body["properties"]  # set by the path, refused in the body


async def test_pages_carry_their_extra_fields_typed() -> None:
    document = await openapi("query")

    def body(path: str) -> dict[str, Any]:
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        return resolve(document, schema)

    deployments = body("/v1/models/{team}/{name}/versions/{version}/deployments")
    assert {"items", "next_cursor", "status", "environments"} <= set(deployments["properties"])
    report = resolve(document, deployments["properties"]["items"]["items"])
    assert {"id", "outcome", "environment", "status", "occurred_at", "received_at"} <= set(report["properties"])
    event = resolve(document, body("/v1/models/{team}/{name}/history")["properties"]["items"]["items"])
    assert set(event["properties"]) == {"event_id", "type", "time", "correlation_id", "causation_id", "data"}
