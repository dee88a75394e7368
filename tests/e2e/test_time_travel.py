"""Time travel through the running stack: reads as of an instant, an alias's history, an environment's timeline.

A scripted history (alias set and moved, approvals, deployed then rolled back, a version deleted,
a share that came, went and came back) is written over HTTP; each step's instant is taken once the
query service has applied it (its consistency token answered), so every as-of answer is known.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_client import NotFound, RegistryClient
from registry_client.config import ClientOptions
from tests.http_tools import ADMIN, Team, acting_as, register, team_key, team_name
from tests.waiting import until

pytestmark = pytest.mark.e2e
NAME = "scorer"
CONSISTENCY = "X-Registry-Consistency"


class Script:
    """The owner's writes, each followed by the instant at which the query service had applied it."""

    def __init__(self, stack: EmbeddedStack, team: Team) -> None:
        self.stack, self.team = stack, team
        self.model = f"/v1/models/{team.name}/{NAME}"
        self.instants: list[datetime] = []

    async def settle(self, response: httpx.Response) -> datetime:
        """Wait until the query has applied the write, then note (and return) the instant after it."""
        assert response.status_code in (200, 201, 204), response.text
        token = response.headers.get(CONSISTENCY)
        assert token, f"no consistency token on {response.request.url}"
        async with acting_as(self.stack, "query", self.team.writer) as http:
            reached = await http.get(self.model, headers={CONSISTENCY: token})
        assert reached.status_code in (200, 404), reached.text
        await asyncio.sleep(0.01)  # the instant lies strictly between this write and the next
        moment = datetime.now(UTC)
        self.instants.append(moment)
        await asyncio.sleep(0.01)
        return moment

    async def write(self, method: str, path: str, body: dict[str, Any] | None = None) -> datetime:
        headers = {"Authorization": f"Bearer {self.team.writer}"}
        async with httpx.AsyncClient(base_url=self.stack.url("registration"), headers=headers) as http:
            return await self.settle(await http.request(method, self.model + path, json=body))

    async def delete_version(self, version: str) -> datetime:
        """Delete once registration has heard that the version no longer runs (the tracker's event travels)."""
        headers = {"Authorization": f"Bearer {self.team.writer}"}
        async with httpx.AsyncClient(base_url=self.stack.url("registration"), headers=headers) as http:

            async def deleted() -> httpx.Response | None:
                answer = await http.delete(f"{self.model}/versions/{version}")
                return None if answer.status_code == 409 else answer

            return await self.settle(await until(deleted, timeout=30, what=f"{version} deletable", interval=0.2))

    async def approve(self, version: str) -> datetime:
        async with httpx.AsyncClient(base_url=self.stack.url("registration"), headers=ADMIN) as http:
            path = f"{self.model}/versions/{version}/approval"
            return await self.settle(await http.put(path, json={"status": "approved", "comment": "reviewed"}))

    async def deploy(self, version: str, status: str) -> datetime:
        report = {
            "team": self.team.name,
            "name": NAME,
            "version": version,
            "environment": "prod",
            "status": status,
            "target": "kubernetes",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        headers = {"Authorization": f"Bearer {self.team.writer}", "Prefer": "wait=30"}
        async with httpx.AsyncClient(base_url=self.stack.url("deploy-tracker"), headers=headers, timeout=45) as http:
            answer = await http.post("/v1/deployments/events", json=report)
        assert answer.status_code == 200 and answer.json()["outcome"] == "applied", answer.text
        return await self.settle(answer)


async def get(stack: EmbeddedStack, token: str, path: str, **params: Any) -> httpx.Response:
    async with acting_as(stack, "query", token) as http:
        return await http.get(
            path, params={k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}
        )


def urls(stack: EmbeddedStack) -> ClientOptions:
    return {"registration_url": stack.url("registration"), "query_url": stack.url("query")}


@pytest.fixture
async def history(stack: EmbeddedStack, team: Team) -> dict[str, Any]:
    """The script; ``at[n]`` is the instant right after step ``n``."""
    script = Script(stack, team)
    reader, former = team_name("reader"), team_name("former")
    at = {0: datetime.now(UTC) - timedelta(seconds=1)}  # before the model existed
    await register(stack, team.writer, team.name, NAME, "1.0.0")
    at[1] = await script.settle(await register(stack, team.writer, team.name, NAME, "1.1.0"))
    at[2] = await script.write("PUT", "/aliases/champion", {"version": "1.0.0"})
    at[3] = await script.approve("1.0.0")
    at[4] = await script.deploy("1.0.0", "deployed")
    at[5] = await script.write("PUT", f"/shares/{reader}")  # a share that will go, and come back
    at[6] = await script.write("PUT", f"/shares/{former}")  # a share that will go for good
    at[7] = await script.write("PUT", "/aliases/champion", {"version": "1.1.0"})
    at[8] = await script.approve("1.1.0")
    at[9] = await script.deploy("1.1.0", "deployed")
    at[10] = await script.write("DELETE", f"/shares/{reader}")
    at[11] = await script.deploy("1.1.0", "rolled_back")
    at[12] = await script.settle(await register(stack, team.writer, team.name, NAME, "1.2.0"))
    at[13] = await script.write("PUT", "/aliases/champion", {"version": "1.2.0"})
    at[14] = await script.delete_version("1.1.0")
    at[15] = await script.write("PUT", f"/shares/{reader}")
    at[16] = await script.write("DELETE", f"/shares/{former}")
    return {
        "at": at,
        "model": script.model,
        "reader": await team_key(stack, reader, ["models:read"]),
        "former": await team_key(stack, former, ["models:read"]),
    }


async def champion(stack: EmbeddedStack, token: str, model: str, at: datetime) -> str | int:
    answer = await get(stack, token, f"{model}/versions/@champion", as_of=at)
    return str(answer.json()["version"]) if answer.status_code == 200 else answer.status_code


class TestAsOfOverHttp:
    async def test_the_alias_the_approval_and_the_environments_are_those_of_then(
        self, stack: EmbeddedStack, team: Team, history: dict[str, Any]
    ) -> None:
        at, model, token = history["at"], history["model"], team.writer
        assert [await champion(stack, token, model, at[n]) for n in (1, 2, 6, 7, 12, 13, 16)] == [
            404,
            "1.0.0",
            "1.0.0",
            "1.1.0",
            "1.1.0",
            "1.2.0",
            "1.2.0",
        ]
        approvals = [
            (await get(stack, token, f"{model}/versions/1.0.0", as_of=at[n])).json()["approval"]["status"]
            for n in (2, 3)
        ]
        assert approvals == ["pending", "approved"]
        prod = []
        for n in (8, 9, 10, 11):
            body = (await get(stack, token, f"{model}/versions/1.1.0/deployments", as_of=at[n])).json()
            prod.append((body["environments"].get("prod") or {}).get("status"))
        assert prod == [None, "deployed", "deployed", "rolled_back"]
        now = (await get(stack, token, f"{model}/versions/1.0.0/deployments", as_of=at[3])).json()
        assert now["environments"] == {} and now["items"] == []

    async def test_versions_aliases_and_the_model_are_those_of_then(
        self, stack: EmbeddedStack, team: Team, history: dict[str, Any]
    ) -> None:
        at, model, token = history["at"], history["model"], team.writer
        listed = (await get(stack, token, f"{model}/versions", as_of=at[13])).json()["items"]
        assert [v["version"] for v in listed] == ["1.2.0", "1.1.0", "1.0.0"]
        listed = (await get(stack, token, f"{model}/versions", as_of=at[14])).json()["items"]
        assert [v["version"] for v in listed] == ["1.2.0", "1.0.0"]
        assert (await get(stack, token, f"{model}/versions/1.1.0", as_of=at[14])).status_code == 404
        assert (await get(stack, token, f"{model}/versions/1.1.0", as_of=at[13])).status_code == 200
        aliases = (await get(stack, token, f"{model}/aliases", as_of=at[2])).json()["items"]
        assert aliases == [{"alias": "champion", "version": "1.0.0"}]
        assert (await get(stack, token, f"{model}/versions/latest", as_of=at[1])).json()["version"] == "1.1.0"
        assert (await get(stack, token, model, as_of=at[0])).status_code == 404
        headline = (await get(stack, token, model, as_of=at[12])).json()
        assert headline["latest_version"] == "1.2.0" and headline["version_count"] == 3
        reports = (await get(stack, token, f"{model}/deployments", as_of=at[9])).json()["items"]
        assert [(r["version"], r["status"]) for r in reports] == [("1.1.0", "deployed"), ("1.0.0", "deployed")]

    async def test_a_time_without_an_offset_is_refused_and_a_future_one_is_now(
        self, stack: EmbeddedStack, team: Team, history: dict[str, Any]
    ) -> None:
        model = history["model"]
        naive = await get(stack, team.writer, model, as_of="2026-03-01T02:14:00")
        assert naive.status_code == 422 and naive.json()["type"].endswith(":invalid"), naive.text
        assert "offset" in naive.json()["detail"]
        future = await get(stack, team.writer, f"{model}/aliases", as_of="2999-01-01T00:00:00Z")
        assert future.json() == (await get(stack, team.writer, f"{model}/aliases")).json()

    async def test_the_alias_history_and_the_environment_timeline(
        self, stack: EmbeddedStack, team: Team, history: dict[str, Any]
    ) -> None:
        model, token = history["model"], team.writer
        moves = (await get(stack, token, f"{model}/aliases/champion/history")).json()["items"]
        assert [(m["action"], m["previous_version"], m["version"]) for m in moves] == [
            ("set", None, "1.0.0"),
            ("moved", "1.0.0", "1.1.0"),
            ("moved", "1.1.0", "1.2.0"),
        ]
        assert all(m["event_id"] and m["correlation_id"] for m in moves)
        first = (await get(stack, token, f"{model}/environments/prod/timeline", limit=2)).json()
        rest = (await get(stack, token, f"{model}/environments/prod/timeline", cursor=first["next_cursor"])).json()
        changes = first["items"] + rest["items"]
        assert [(c["version"], c["previous_status"], c["status"]) for c in changes] == [
            ("1.0.0", None, "deployed"),
            ("1.1.0", None, "deployed"),
            ("1.1.0", "deployed", "rolled_back"),
        ]
        timeline = (await get(stack, token, f"{model}/timeline")).json()["items"]
        assert timeline[0]["kind"] == "deleted" and {e["kind"] for e in timeline} == {
            "alias",
            "approval",
            "deployment",
            "deleted",
        }


class TestIsolationInThePast:
    async def test_a_reader_sees_the_past_only_from_its_current_share(
        self, stack: EmbeddedStack, history: dict[str, Any]
    ) -> None:
        at, model, token = history["at"], history["model"], history["reader"]
        # Its first share (steps 5 to 10) is over: only the one from step 15 on counts.
        assert [await champion(stack, token, model, at[n]) for n in (5, 7, 9, 14, 15)] == [404, 404, 404, 404, "1.2.0"]
        assert (await get(stack, token, f"{model}/aliases/champion/history")).json()["items"] == []
        assert (await get(stack, token, f"{model}/environments/prod/timeline")).json()["items"] == []
        events = (await get(stack, token, f"{model}/history")).json()["items"]
        # Its own share only: the other team's share ending since is none of its business.
        assert [e["type"] for e in events] == ["registry.event.model_shared"]
        # Every report came before its share: none is listed, now or as of then (the statuses stand).
        team = model.split("/")[3]
        for path, as_of in ((f"{model}/deployments", None), (f"{model}/deployments", at[15])):
            assert (await get(stack, token, path, **({"as_of": as_of} if as_of else {}))).json()["items"] == []
        version = (await get(stack, token, f"{model}/versions/1.0.0/deployments", as_of=at[15])).json()
        assert version["items"] == [] and "prod" in version["environments"]
        assert (await get(stack, token, f"/v1/teams/{team}/deployments")).json()["items"] == []

    async def test_a_former_reader_sees_nothing_past_included(
        self, stack: EmbeddedStack, history: dict[str, Any]
    ) -> None:
        at, model, token = history["at"], history["model"], history["former"]
        for path in ("", "/aliases/champion/history", "/environments/prod/timeline", "/history", "/timeline"):
            assert (await get(stack, token, model + path)).status_code == 404, path
        assert (await get(stack, token, model, as_of=at[7])).status_code == 404  # it read the model then


class TestTheClient:
    async def test_who_was_champion_and_what_ran_in_prod(
        self, stack: EmbeddedStack, team: Team, history: dict[str, Any]
    ) -> None:
        at = history["at"]

        def scenario() -> dict[str, Any]:
            with RegistryClient(team.writer, **urls(stack)) as client:
                then = client.get_version(team.name, NAME, "@champion", as_of=at[7])
                deployed = client.get_deployments(team.name, NAME, "1.1.0", as_of=at[9])
                moves = list(client.alias_history(team.name, NAME, "champion", page_size=1))
                changes = list(client.environment_timeline(team.name, NAME, "prod"))
                versions = [v.version for v in client.versions(team.name, NAME, as_of=at[14])]
                aliases = client.list_aliases(team.name, NAME, as_of=at[2]).items
                try:
                    client.get_model(team.name, NAME, as_of=at[0])
                    missing = False
                except NotFound:
                    missing = True
            return {
                "then": then.version,
                "prod": deployed.environments["prod"].status,
                "moves": [m.version for m in moves],
                "changes": [(c.version, c.status) for c in changes],
                "versions": versions,
                "aliases": aliases,
                "missing": missing,
            }

        found = await asyncio.to_thread(scenario)
        assert found == {
            "then": "1.1.0",
            "prod": "deployed",
            "moves": ["1.0.0", "1.1.0", "1.2.0"],
            "changes": [("1.0.0", "deployed"), ("1.1.0", "deployed"), ("1.1.0", "rolled_back")],
            "versions": ["1.2.0", "1.0.0"],
            "aliases": [{"alias": "champion", "version": "1.0.0"}],
            "missing": True,
        }
