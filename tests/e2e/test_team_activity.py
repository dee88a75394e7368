"""A team's recent registrations and deployments, and a model's deployments, within what the caller reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry_cli.stack import EmbeddedStack
from tests.e2e.console_tools import new_team
from tests.http_tools import acting_as, register

pytestmark = pytest.mark.e2e


async def _deploy(stack: EmbeddedStack, key: str, team: str, name: str, environment: str, status: str) -> None:
    report = {"team": team, "name": name, "version": "1.0.0", "environment": environment, "status": status}
    report["occurred_at"] = datetime.now(UTC).isoformat()
    async with acting_as(stack, "deploy-tracker", key) as http:
        answer = await http.post("/v1/deployments/events", json=report, headers={"Prefer": "wait=20"})
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied", answer.text


async def test_recent_activity_is_newest_first_and_only_what_the_caller_reads(stack: EmbeddedStack) -> None:
    owner, owner_key = await new_team(stack, "act")
    reader, reader_key = await new_team(stack, "rd")
    for name in ("shared-model", "private-model"):
        await register(stack, owner_key, owner, name, "1.0.0")
    await _deploy(stack, owner_key, owner, "shared-model", "qa", "deployed")  # before the share: not the reader's
    async with acting_as(stack, "registration", owner_key) as http:
        assert (await http.put(f"/v1/models/{owner}/shared-model/shares/{reader}")).status_code == 200
    for name in ("shared-model", "private-model"):
        await _deploy(stack, owner_key, owner, name, "staging", "deployed")
    await _deploy(stack, owner_key, owner, "shared-model", "dev", "deployed")

    async def activity(key: str) -> tuple[list[str], list[tuple[str, str]], list[str]]:
        async with acting_as(stack, "query", key) as http:
            versions = (await http.get(f"/v1/teams/{owner}/versions")).json()["items"]
            deployments = (await http.get(f"/v1/teams/{owner}/deployments")).json()["items"]
            by_model = await http.get(f"/v1/models/{owner}/shared-model/deployments", params={"environment": "dev"})
        assert by_model.status_code == 200
        return (
            [v["name"] for v in versions],
            [(d["name"], d["environment"]) for d in deployments],
            [d["environment"] for d in by_model.json()["items"]],
        )

    assert await activity(owner_key) == (
        ["private-model", "shared-model"],
        [("shared-model", "dev"), ("private-model", "staging"), ("shared-model", "staging"), ("shared-model", "qa")],
        ["dev"],
    )
    assert await activity(reader_key) == (
        ["shared-model"],
        [("shared-model", "dev"), ("shared-model", "staging")],
        ["dev"],
    )
    _, outsider_key = await new_team(stack, "out")
    async with acting_as(stack, "query", outsider_key) as http:
        versions = await http.get(f"/v1/teams/{owner}/versions")
        deployments = await http.get(f"/v1/teams/{owner}/deployments")
        hidden = await http.get(f"/v1/models/{owner}/private-model/deployments")
        absent = await http.get(f"/v1/models/{owner}/no-such-model/deployments")
    assert versions.json()["items"] == [] and deployments.json()["items"] == []
    assert hidden.status_code == absent.status_code == 404
    # No server-side clock on refusals: it would time a hidden model against an absent one.
    assert "server-timing" not in hidden.headers and "server-timing" not in absent.headers
    assert versions.headers["server-timing"].startswith("app;dur=")


async def test_a_models_applied_reports_are_listed_as_soon_as_they_are_applied(stack: EmbeddedStack) -> None:
    team, key = await new_team(stack, "tl")
    await register(stack, key, team, "m", "1.0.0")

    async def applied() -> list[tuple[str, str]]:
        async with acting_as(stack, "query", key) as http:
            answer = await http.get(f"/v1/models/{team}/m/deployments", params={"outcome": "applied"})
        return [(row["environment"], row["status"]) for row in answer.json()["items"]]

    assert await applied() == []
    for environment, status in (("staging", "deploying"), ("staging", "deployed"), ("canary", "deployed")):
        await _deploy(stack, key, team, "m", environment, status)
        # Read right after the tracker answered: no stale list, on the cached path either.
        assert (await applied())[0] == (environment, status)
    async with acting_as(stack, "deploy-tracker", key) as http:
        illegal = {"team": team, "name": "m", "version": "1.0.0", "environment": "prod", "status": "deployed"}
        illegal["occurred_at"] = datetime.now(UTC).isoformat()
        refused = await http.post("/v1/deployments/events", json=illegal, headers={"Prefer": "wait=20"})
    assert refused.status_code == 409  # prod takes approved versions only
    async with acting_as(stack, "query", key) as http:
        every = (await http.get(f"/v1/models/{team}/m/deployments")).json()["items"]
        rejected = (await http.get(f"/v1/models/{team}/m/deployments", params={"outcome": "rejected"})).json()["items"]
    assert len(every) == 4 and [row["outcome"] for row in rejected] == ["rejected"]
    assert await applied() == [("canary", "deployed"), ("staging", "deployed"), ("staging", "deploying")]
