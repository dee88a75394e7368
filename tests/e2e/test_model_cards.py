"""Model cards through the running stack: registered over HTTP, deployed over the bridge, read as JSON and markdown."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from tests.http_tools import acting_as, register, team_key
from tests.waiting import until

pytestmark = pytest.mark.e2e
HOSTILE = "Scores <script>alert(1)</script> transactions | fast"


async def report_deploying(stack: EmbeddedStack, token: str, team: str, version: str) -> None:
    report = {
        "team": team,
        "name": "m",
        "version": version,
        "environment": "staging",
        "status": "deploying",
        "target": "kubernetes",
        "pipeline": "github-actions",
        "run_id": "7",
        "occurred_at": datetime(2026, 5, 1, 12, tzinfo=UTC).isoformat(),
    }
    async with acting_as(stack, "deploy-tracker", token) as http:
        response = await http.post("/v1/deployments/events", json=report)
    assert response.status_code == 202, response.text


async def test_a_card_describes_versions_metrics_and_deployments_as_json_and_markdown(stack: EmbeddedStack) -> None:
    team = f"card-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, ["models:read", "models:write", "deployments:write"])
    await register(stack, token, team, "m", "1.0.0", metrics={"auc": 0.9}, description="first cut")
    await register(
        stack, token, team, "m", "1.1.0", metrics={"auc": 0.95}, description=HOSTILE, tags={"domain": "payments|cards"}
    )
    await report_deploying(stack, token, team, "1.1.0")
    path = f"/v1/assistant/models/{team}/m/card"

    async with acting_as(stack, "query", token) as query:

        async def deployed_card() -> dict[str, Any] | None:
            response = await query.get(path)
            body: dict[str, Any] = response.json() if response.status_code == 200 else {}
            return body if body and body["card"]["deployments"]["environments"] else None

        body = await until(deployed_card, timeout=30, what="the card showing the staging report")
        as_markdown = await query.get(path, headers={"Accept": "text/markdown"})
        older = await query.get(path, params={"version": "1.0.0"})
        absent_version = await query.get(path, params={"version": "9.9.9"})
        not_semver = await query.get(path, params={"version": "newest"})

    card = body["card"]
    assert card["version"] == "1.1.0" and card["details"]["versions"] == ["1.1.0", "1.0.0"]
    assert card["intended_use"]["description"] == HOSTILE and card["tags"] == {"domain": "payments|cards"}
    assert [(m["version"], m["changes"]) for m in card["metrics"]] == [("1.1.0", {"auc": 0.05}), ("1.0.0", {})]
    [staging] = card["deployments"]["environments"]
    assert (staging["environment"], staging["status"], staging["pipeline"]) == (
        "staging",
        "deploying",
        "github-actions",
    )
    assert card["deployments"]["reports_read"] == 1
    assert "training.lineage" in card["not_recorded"] and "details.owners" in card["not_recorded"]

    assert as_markdown.status_code == 200
    assert as_markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert as_markdown.text == body["markdown"]
    assert "<script>" not in as_markdown.text and "&lt;script&gt;" in as_markdown.text
    assert "| domain | payments\\|cards |" in as_markdown.text
    assert "| 1.1.0 | auc | 0.95 | +0.05 |" in as_markdown.text

    assert older.status_code == 200 and older.json()["card"]["version"] == "1.0.0"
    assert "This card describes 1.0.0; the model's latest version is 1.1.0." in older.json()["card"]["caveats"]
    assert absent_version.status_code == 404 and not_semver.status_code == 422


async def test_another_team_gets_the_same_404_for_a_hidden_model_as_for_an_absent_one(stack: EmbeddedStack) -> None:
    owner, other = f"card-{uuid.uuid4().hex[:6]}", f"peek-{uuid.uuid4().hex[:6]}"
    owner_token = await team_key(stack, owner, ["models:read", "models:write"])
    other_token = await team_key(stack, other, ["models:read"])
    await register(stack, owner_token, owner, "m", "1.0.0")
    async with acting_as(stack, "query", owner_token) as query:

        async def readable() -> bool:
            return (await query.get(f"/v1/assistant/models/{owner}/m/card")).status_code == 200

        await until(readable, timeout=15, what="the owner reading its card")
    answers = []
    async with acting_as(stack, "query", other_token) as query:
        for name in ("m", "nothing-here"):
            for accept in ("application/json", "text/markdown"):
                response = await query.get(f"/v1/assistant/models/{owner}/{name}/card", headers={"Accept": accept})
                problem = response.json()
                problem.pop("correlation_id")
                problem["detail"] = problem["detail"].replace(f"{owner}/{name}", "MODEL")
                answers.append((response.status_code, problem))
    assert all(status == 404 for status, _ in answers)
    assert all(answer == answers[0] for answer in answers)
