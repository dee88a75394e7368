"""Comparing versions against the running stack: HTTP, the Python client, the CLI, MCP, the console and Chromium."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from registry_cli.stack import EmbeddedStack
from registry_client import NotFound, RegistryClient
from tests.browser import PHONE, screenshot
from tests.e2e.console_tools import CONSOLE_SCOPES, console_client, sign_in
from tests.e2e.test_cli_browse import cli
from tests.e2e.test_console_browser import _sign_in, _watch_console
from tests.e2e.test_mcp import mcp_session
from tests.http_tools import acting_as, register, team_key, team_name
from tests.waiting import until

pytestmark = pytest.mark.e2e
SHA_A, SHA_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
REPO = "https://git.example/fraud/scorer"


@dataclass(frozen=True)
class Seeded:
    team: str
    key: str
    other: str  # a key of another team


def _source(commit: str, *datasets: tuple[str, str, str | None]) -> dict[str, Any]:
    return {
        "code_repository": REPO,
        "code_commit": commit,
        "run_id": f"run-{commit[:3]}",
        "datasets": [{"name": n, "uri": u, **({"digest": d} if d else {})} for n, u, d in datasets],
    }


async def _report(stack: EmbeddedStack, key: str, team: str, version: str, env: str, status: str, at: datetime) -> None:
    body = {"team": team, "name": "scorer", "version": version, "environment": env, "status": status}
    body |= {"occurred_at": at.isoformat(), "target": "kubernetes", "pipeline": "deploy"}
    async with acting_as(stack, "deploy-tracker", key) as http:
        answer = await http.post("/v1/deployments/events", json=body, headers={"Prefer": "wait=30"})
    assert answer.status_code == 200 and answer.json()["outcome"] == "applied", answer.text


@pytest.fixture(scope="module")
async def seeded(stack: EmbeddedStack) -> Seeded:
    team = team_name("cmp")
    key = await team_key(stack, team, CONSOLE_SCOPES)
    other = await team_key(stack, team_name("oth"), CONSOLE_SCOPES)
    await register(stack, key, team, "base-model", "2.0.0")
    train, holdout = ("train", "s3://data/train", SHA_A), ("holdout", "s3://data/holdout", None)
    retrained = ("train", "s3://data/train", SHA_B)
    await register(
        stack, key, team, "scorer", "1.0.0",
        metrics={"auc": 0.91, "latency_ms": 14.0, "drift": -0.2}, tags={"owner": "alice", "stage": "beta"},
        parameters={"depth": "6"}, source=_source("abc1234", train, holdout),
    )  # fmt: skip
    await register(
        stack, key, team, "scorer", "1.1.0",
        metrics={"auc": 0.93, "latency_ms": 12.0, "drift": 0.1}, tags={"owner": "bob"},
        parameters={"depth": "8", "eta": "0.1"}, source=_source("def5678", retrained, holdout),
        parent={"team": team, "name": "base-model", "version": "2.0.0"},
    )  # fmt: skip
    await register(
        stack, key, team, "scorer", "1.2.0",
        metrics={"auc": 0.95, "latency_ms": 11.0, "f1": 0.8}, tags={"owner": "bob"}, source=_source("def5678"),
    )  # fmt: skip
    await register(stack, key, team, "hostile", "1.0.0", metrics={HOSTILE: 1.0}, tags={HOSTILE: HOSTILE})
    await register(stack, key, team, "hostile", "1.1.0", metrics={HOSTILE: 2.0})
    async with acting_as(stack, "registration", key) as http:
        m = f"/v1/models/{team}/scorer"
        assert (await http.put(f"{m}/aliases/champion", json={"version": "1.1.0"})).status_code == 200
        for version in ("1.0.0", "1.1.0"):  # prod needs approval in the test stack
            decided = {"status": "approved", "comment": "offline evaluation reviewed"}
            approved = await http.put(f"{m}/versions/{version}/approval", json=decided)
            assert approved.status_code == 200, approved.text
    start = datetime.now(UTC) - timedelta(days=6)
    for hours, version, env, status in (
        (0, "1.0.0", "staging", "deployed"),
        (20, "1.0.0", "prod", "deploying"),
        (21, "1.0.0", "prod", "deployed"),
        (70, "1.1.0", "staging", "deploying"),
        (71, "1.1.0", "staging", "deployed"),
        (96, "1.1.0", "prod", "deploying"),
        (97, "1.1.0", "prod", "deployed"),
        (98, "1.0.0", "prod", "retired"),
        (120, "1.2.0", "staging", "failed"),
    ):
        await _report(stack, key, team, version, env, status, start + timedelta(hours=hours))

    async def projected() -> bool:
        async with acting_as(stack, "query", key) as http:
            answer = await http.get(f"/v1/models/{team}/scorer/compare", params={"versions": "1.0.0,1.2.0"})
        return answer.status_code == 200 and "staging" in answer.json()["versions"][1]["environments"]

    await until(projected, timeout=30, what="the deployment reports in the read model")
    return Seeded(team, key, other)


async def _compare(stack: EmbeddedStack, key: str, team: str, name: str = "scorer", **params: str) -> httpx.Response:
    async with acting_as(stack, "query", key) as http:
        return await http.get(f"/v1/models/{team}/{name}/compare", params=params)


class TestOverHttp:
    async def test_versions_side_by_side_with_deltas_and_differences(
        self, stack: EmbeddedStack, seeded: Seeded
    ) -> None:
        answer = await _compare(stack, seeded.key, seeded.team, versions="1.0.0,@champion,latest")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["base"] == "1.0.0" and [v["version"] for v in body["versions"]] == ["1.0.0", "1.1.0", "1.2.0"]
        assert body["environments"] == ["prod", "staging"]
        base, champion, latest = body["versions"]
        assert champion["aliases"] == ["champion"] and champion["approval"]["status"] == "approved"
        assert latest["environments"]["staging"]["status"] == "failed" and latest["lineage"]["datasets"] == []
        assert (
            base["environments"]["prod"]["status"] == "retired"
            and champion["environments"]["prod"]["status"] == "deployed"
        )
        assert champion["lineage"]["parent"] == {"team": seeded.team, "name": "base-model", "version": "2.0.0"}
        assert champion["provenance"] is None
        to_champion, to_latest = body["differences"]
        auc = next(m for m in to_champion["metrics"] if m["name"] == "auc")
        assert auc == {
            "name": "auc",
            "base": 0.91,
            "value": 0.93,
            "delta": 0.02,
            "relative": pytest.approx(0.021978, abs=1e-6),
        }
        assert to_champion["tags"] == {
            "added": {},
            "removed": {"stage": "beta"},
            "changed": {"owner": {"base": "alice", "value": "bob"}},
        }
        assert to_champion["parameters"]["added"] == {"eta": "0.1"}
        assert [d["digest"] for d in to_champion["datasets_added"]] == [SHA_B]
        assert [d["digest"] for d in to_champion["datasets_removed"]] == [SHA_A]
        assert to_champion["code_commit"] == {"base": "abc1234", "value": "def5678"}
        assert to_champion["parent"] == {"base": None, "value": f"{seeded.team}/base-model@2.0.0"}
        assert to_latest["metrics_only_in_base"] == ["drift"] and to_latest["metrics_only_in_version"] == ["f1"]
        assert to_champion["approval"] is None and to_latest["approval"] == {"base": "approved", "value": "pending"}
        assert [d["name"] for d in to_latest["datasets_removed"]] == ["train", "holdout"]

    async def test_base_and_head_are_the_two_version_form(self, stack: EmbeddedStack, seeded: Seeded) -> None:
        answer = await _compare(stack, seeded.key, seeded.team, base="1.1.0", head="1.2.0")
        assert answer.status_code == 200, answer.text
        assert answer.json()["base"] == "1.1.0" and answer.json()["differences"][0]["version"] == "1.2.0"

    @pytest.mark.parametrize(
        ("params", "status"),
        [
            ({"versions": "1.0.0,9.9.9"}, 404),
            ({"versions": "1.0.0,@nobody"}, 404),
            ({"versions": "1.1.0,@champion"}, 422),
            ({"versions": "1.0.0,not-semver"}, 422),
            ({"versions": "1.0.0"}, 422),
            ({"versions": ",".join(f"1.0.{n}" for n in range(11))}, 422),
            ({"base": "1.0.0"}, 422),
            ({"versions": "1.0.0,1.1.0", "head": "1.2.0"}, 422),
        ],
    )
    async def test_unknown_duplicate_and_malformed_versions_are_refused(
        self, stack: EmbeddedStack, seeded: Seeded, params: dict[str, str], status: int
    ) -> None:
        answer = await _compare(stack, seeded.key, seeded.team, **params)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"

    async def test_another_teams_model_answers_like_a_missing_one(self, stack: EmbeddedStack, seeded: Seeded) -> None:
        hidden = await _compare(stack, seeded.other, seeded.team, versions="1.0.0,1.1.0")
        missing = await _compare(stack, seeded.key, seeded.team, "no-such-model", versions="1.0.0,1.1.0")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["type"] == missing.json()["type"] == "urn:registry:problem:not_found"
        assert hidden.json()["detail"].replace("scorer", "X") == missing.json()["detail"].replace("no-such-model", "X")


class TestClientCliAndMcp:
    async def test_the_client_answers_the_typed_comparison(self, stack: EmbeddedStack, seeded: Seeded) -> None:
        def compare(key: str) -> Any:
            with RegistryClient(key, query_url=stack.url("query")) as client:
                return client.compare_versions(seeded.team, "scorer", ["1.0.0", "1.2.0"])

        found = await asyncio.to_thread(compare, seeded.key)
        assert found.base == "1.0.0" and found.differences[0].version == "1.2.0"
        assert {m.name: m.delta for m in found.differences[0].metrics}["latency_ms"] == -3.0
        with pytest.raises(NotFound):
            await asyncio.to_thread(compare, seeded.other)

    async def test_the_cli_prints_tables_or_json_and_exits_3_for_a_hidden_model(
        self, stack: EmbeddedStack, seeded: Seeded
    ) -> None:
        shown = await cli(stack, seeded.key, "compare", seeded.team, "scorer", "1.0.0", "1.1.0", "1.2.0")
        assert shown.code == 0, shown.err
        assert "auc" in shown.out and "0.93 (+0.02, +2.2%)" in shown.out and "0.95 (+0.04, +4.4%)" in shown.out
        assert "~ owner: alice → bob" in shown.out and "abc1234 → def5678" in shown.out
        assert "deployed since" in shown.out
        as_json = (
            await cli(stack, seeded.key, "compare", seeded.team, "scorer", "1.0.0", "@champion", "--json")
        ).json()
        assert (
            as_json["versions"][1]["version"] == "1.1.0"
            and as_json["differences"][0]["code_commit"]["value"] == "def5678"
        )
        hidden = await cli(stack, seeded.other, "compare", seeded.team, "scorer", "1.0.0", "1.1.0")
        assert hidden.code == 3 and "does not exist or is not visible to you" in hidden.err
        alone = await cli(stack, seeded.key, "compare", seeded.team, "scorer", "1.0.0")
        assert alone.code == 2

    async def test_the_mcp_tool_answers_the_comparison(self, stack: EmbeddedStack, seeded: Seeded) -> None:
        arguments = {"team": seeded.team, "name": "scorer", "versions": ["1.0.0", "1.1.0"]}
        async with mcp_session(stack, seeded.key) as session:
            result = await session.call_tool("compare_versions", arguments)
            hidden = None
        async with mcp_session(stack, seeded.other) as session:
            hidden = await session.call_tool("compare_versions", arguments)
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["differences"][0]["code_commit"]["value"] == "def5678"
        assert "auc 0.91 -> 0.93 (+0.02)" in str(result.content[0])
        assert hidden.is_error and "does not exist or is not visible to you" in str(hidden.content[0])


class TestConsole:
    async def test_the_page_shows_the_tables_and_charts_and_escapes_what_teams_wrote(
        self, stack: EmbeddedStack, seeded: Seeded
    ) -> None:
        async with console_client(stack) as http:
            assert (await sign_in(http, seeded.key)).status_code == 303
            page = await http.get(
                f"/console/models/{seeded.team}/scorer/compare", params={"versions": "1.0.0,1.1.0,1.2.0"}
            )
            assert page.status_code == 200, page.text
            assert "script-src 'self'" in page.headers["content-security-policy"]
            html = page.text
            assert (
                html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-metric"') == 4
            )  # auc, drift, f1, latency
            assert 'class="chart chart-deployments"' in html and "Differences from v1.0.0" in html
            assert ' style="' not in html and "<style" not in html
            default = await http.get(f"/console/models/{seeded.team}/scorer/compare")
            assert default.status_code == 200 and 'value="1.1.0,1.2.0"' in default.text
            hostile = await http.get(f"/console/models/{seeded.team}/hostile/compare")
            assert hostile.status_code == 200, hostile.text
            assert "<script>alert" not in hostile.text and "<img src=x" not in hostile.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text
            unknown = await http.get(
                f"/console/models/{seeded.team}/scorer/compare", params={"versions": "1.0.0,9.9.9"}
            )
            assert unknown.status_code == 404 and "Versions, the base first" in unknown.text
            model = await http.get(f"/console/models/{seeded.team}/scorer")
            assert f"/console/models/{seeded.team}/scorer/compare?versions=1.1.0%2C1.2.0" in model.text
        async with console_client(stack) as http:
            assert (await sign_in(http, seeded.other)).status_code == 303
            hidden = await http.get(f"/console/models/{seeded.team}/scorer/compare", params={"versions": "1.0.0,1.1.0"})
            assert hidden.status_code == 404 and "1.0.0" not in hidden.text

    async def test_in_chromium_from_the_model_page_to_the_charts(
        self, stack: EmbeddedStack, seeded: Seeded, browser_page: Page
    ) -> None:
        page = browser_page
        problems = _watch_console(page)
        await _sign_in(page, stack, seeded.key)
        await page.goto(f"{stack.url('query')}/console/models/{seeded.team}/scorer")
        await expect(page.get_by_label("Compare", exact=True)).to_have_value("1.1.0")  # the version before the latest
        await page.locator("#versions").scroll_into_view_if_needed()
        await screenshot(page, "compare-00-model-page")
        await page.get_by_role("link", name="Compare v1.1.0 with v1.2.0").click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Compare versions of scorer")
        await expect(page.locator("table.compare")).to_contain_text("approved")
        await expect(page.locator("svg.chart-metric")).to_have_count(4)
        await screenshot(page, "compare-01-two-versions")
        await page.get_by_label("Versions, the base first").fill("1.0.0,@champion,latest")
        await page.get_by_role("button", name="Compare").click()
        await expect(page).to_have_url(re.compile(r"versions=1\.0\.0%2C%40champion%2Clatest"))
        await expect(page.locator("#differences h3")).to_have_count(2)
        chart = page.locator("svg.chart-deployments")
        await expect(chart).to_be_visible()
        box = await chart.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 100
        await screenshot(page, "compare-02-three-versions")
        await page.goto(f"{stack.url('query')}/console/models/{seeded.team}/hostile/compare")
        await expect(page.locator("figcaption").first).to_have_text(HOSTILE)
        await screenshot(page, "compare-03-hostile-names")
        assert problems == [], problems

    async def test_on_a_phone(self, stack: EmbeddedStack, seeded: Seeded, phone_page: Page) -> None:
        page = phone_page
        await _sign_in(page, stack, seeded.key)
        await page.goto(f"{stack.url('query')}/console/models/{seeded.team}/scorer/compare?versions=1.0.0,1.1.0,1.2.0")
        await expect(page.locator("svg.chart-metric").first).to_be_visible()
        # Nothing wider than the screen: wide tables and the deployment chart scroll inside their own frame.
        # (A phone widens its layout to the content: compare with the screen, not with innerWidth.)
        overflow = await page.evaluate("document.documentElement.scrollWidth") - PHONE["width"]
        wide = await page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391"
            " && !e.closest('.table-wrap, .chart-figure.wide')).slice(0, 8)"
            ".map(e => e.tagName + '.' + (e.className.baseVal ?? e.className) + ' ' + e.getBoundingClientRect().right)"
        )
        await screenshot(page, "compare-04-phone")
        assert overflow <= 0, f"the page is {overflow}px wider than the phone: {wide}"
