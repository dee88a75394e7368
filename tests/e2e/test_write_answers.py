"""What a newcomer is answered over the running stack: PUTs are idempotent, every version view shows its
aliases, the card its approval and aliases, and a request sent to the wrong service names the right one."""

import uuid

import pytest

from registry_cli.stack import EmbeddedStack
from registry_client.consistency import CONSISTENCY_HEADER
from tests.http_tools import Team, acting_as, register, team_name

pytestmark = pytest.mark.e2e


async def test_a_put_again_succeeds_and_every_answer_shows_the_aliases_and_approval(
    stack: EmbeddedStack, team: Team
) -> None:
    t, other, word = team.name, team_name("other"), f"qua{uuid.uuid4().hex[:6]}"
    await register(stack, team.writer, t, "m", "1.4.0", description=f"Scores {word} payments")
    async with acting_as(stack, "registration", team.writer) as http:
        base = f"/v1/models/{t}/m"
        first = await http.put(f"{base}/aliases/champion", json={"version": "1.4.0"})
        again = await http.put(f"{base}/aliases/champion", json={"version": "1.4.0"})
        shares = [await http.put(f"{base}/shares/{other}") for _ in range(2)]
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == {"alias": "champion", "version": "1.4.0", "previous_version": "1.4.0"}
    assert [s.status_code for s in shares] == [200, 200] and shares[0].json() == shares[1].json()
    async with acting_as(stack, "registration", team.approver) as http:
        approved = await http.put(f"{base}/versions/1.4.0/approval", json={"status": "approved", "comment": "ok"})
    assert approved.status_code == 200 and approved.json()["aliases"] == ["champion"]

    async with acting_as(stack, "query", team.writer) as http:
        http.headers[CONSISTENCY_HEADER] = approved.headers[CONSISTENCY_HEADER]  # reads wait for the approval
        [hit] = (await http.get("/v1/assistant/search", params={"q": word})).json()["items"]
        card = (await http.get(f"/v1/assistant/models/{t}/m/card")).json()
    assert hit["latest_version"]["version"] == "1.4.0" and hit["latest_version"]["aliases"] == ["champion"]
    assert hit["latest_version"]["approval"]["status"] == "approved"
    assert (card["card"]["approval"]["status"], card["card"]["aliases"]) == ("approved", {"champion": "1.4.0"})
    assert [(m["version"], m["approval"], m["aliases"]) for m in card["card"]["metrics"]] == [
        ("1.4.0", "approved", ["champion"])
    ]
    assert "| 1.4.0 | approved | champion |" in card["markdown"]


async def test_a_deployment_report_sent_to_registration_is_told_the_deploy_tracker_serves_it(
    stack: EmbeddedStack, team: Team
) -> None:
    report = {"team": team.name, "name": "m", "version": "1.0.0", "environment": "staging", "status": "deploying"}
    async with acting_as(stack, "registration", team.writer) as http:
        refused = await http.post("/v1/deployments/events", json=report)
    problem = refused.json()
    assert (refused.status_code, problem["type"]) == (404, "urn:registry:problem:not_found")
    assert problem["detail"].startswith("the registration service does not serve POST /v1/deployments/events: ")
    assert "the deploy-tracker service does" in problem["detail"]
