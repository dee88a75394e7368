"""Where versions run, as registration learns it: the tracker's status changes and its event log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from registration.deployments import InMemoryDeployedEnvironments, StatusSeen, status_seen
from registration.deployments_bootstrap import TrackerLog, TrackerUnavailable, bootstrap
from registry_contract import messages
from registry_contract.ids import version_id

pytestmark = pytest.mark.unit
TRACKER = "/registry/deploy-tracker"
CHANGED = messages.DEPLOYMENT_STATUS_CHANGED


def data(**overrides: Any) -> dict[str, Any]:
    return {
        "model_id": "mdl_x",
        "team": "fraud",
        "name": "card",
        "version": "1.0.0",
        "environment": "prod",
        "status": "deployed",
        **overrides,
    }


class TestStatusChanges:
    def test_a_tracker_status_change_names_the_version_environment_status_and_revision(self) -> None:
        seen = status_seen(CHANGED, TRACKER, data(version="1.0.0+b.1"), 42)
        assert seen == StatusSeen(version_id("fraud", "card", "1.0.0"), "prod", "deployed", 42)

    @pytest.mark.parametrize(
        ("event_type", "source", "payload"),
        [
            (messages.MODEL_VERSION_REGISTERED, TRACKER, data()),
            (CHANGED, "/registry/registration", data()),
            (CHANGED, "/elsewhere/registry/deploy-tracker", data()),
            (CHANGED, TRACKER, data(environment="a.b")),  # a dot would be a path in the stored document
            (CHANGED, TRACKER, data(environment="$where")),
            (CHANGED, TRACKER, data(environment="x" * 100)),
            (CHANGED, TRACKER, data(status="gone-fishing")),
            (CHANGED, TRACKER, data(version="latest")),
            (CHANGED, TRACKER, data(team=None)),
            (CHANGED, TRACKER, [1, 2]),
            (CHANGED, TRACKER, {}),
        ],
    )
    def test_anything_else_is_not_a_status_change(self, event_type: str, source: str, payload: Any) -> None:
        assert status_seen(event_type, source, payload, 1) is None

    async def test_an_older_revision_never_undoes_a_newer_one(self) -> None:
        table = InMemoryDeployedEnvironments()
        await table.record([StatusSeen("v1", "prod", "retired", 13), StatusSeen("v1", "prod", "deploying", 12)])
        await table.record([StatusSeen("v1", "qa", "deployed", 0), StatusSeen("v1", "qa", "failed", 0)])
        assert await table.of(["v1", "v2"]) == {"v1": {"prod": "retired", "qa": "failed"}}


def tracker_log(pages: dict[int, dict[str, Any]], asked: list[int]) -> TrackerLog:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-registry-service-token"] == "t"
        after = int(request.url.params["after"])
        asked.append(after)
        if after not in pages:
            return httpx.Response(503)
        return httpx.Response(200, content=json.dumps(pages[after]))

    return TrackerLog("http://tracker", "t", transport=httpx.MockTransport(answer))


def item(revision: int, event_type: str = CHANGED, **overrides: Any) -> dict[str, Any]:
    return {
        "id": f"e{revision}",
        "type": event_type,
        "source": TRACKER,
        "revision": revision,
        "data": data(**overrides),
    }


class TestBootstrap:
    async def test_pages_through_the_log_applies_status_changes_and_is_done_once(self) -> None:
        table, asked = InMemoryDeployedEnvironments(), list[int]()
        pages: dict[int, dict[str, Any]] = {
            0: {"items": [item(5), item(6, messages.DEPLOYMENT_REPORT_RECORDED)], "next_after": 6},
            6: {"items": [item(9, environment="qa", status="deploying")], "next_after": None},
        }
        assert await bootstrap(table, tracker_log(pages, asked), page_size=2) == 2
        assert await table.of([version_id("fraud", "card", "1.0.0")]) == {
            version_id("fraud", "card", "1.0.0"): {"prod": "deployed", "qa": "deploying"}
        }
        assert await bootstrap(table, tracker_log(pages, asked)) is None  # the next start asks nothing
        assert asked == [0, 6]

    async def test_a_log_that_names_a_next_page_until_an_empty_one_ends_too(self) -> None:
        table, asked = InMemoryDeployedEnvironments(), list[int]()
        pages: dict[int, dict[str, Any]] = {
            0: {"items": [item(5)], "next_after": 5},
            5: {"items": [], "next_after": None},
        }
        assert await bootstrap(table, tracker_log(pages, asked)) == 1
        assert asked == [0, 5]

    async def test_a_tracker_that_fails_midway_is_resumed_where_it_stopped(self) -> None:
        table, asked = InMemoryDeployedEnvironments(), list[int]()
        pages: dict[int, dict[str, Any]] = {0: {"items": [item(5)], "next_after": 5}}  # then 503
        with pytest.raises(TrackerUnavailable):
            await bootstrap(table, tracker_log(pages, asked), page_size=1)
        pages[5] = {"items": [item(8, status="retired")], "next_after": None}
        assert await bootstrap(table, tracker_log(pages, asked), page_size=1) == 1
        assert asked == [0, 5, 5]
        assert (await table.of([version_id("fraud", "card", "1.0.0")]))[version_id("fraud", "card", "1.0.0")] == {
            "prod": "retired"
        }

    @pytest.mark.parametrize("body", [b"not json", b'{"items": 5}', b"[]"])
    async def test_a_page_that_is_not_a_log_page_is_an_unavailable_tracker(self, body: bytes) -> None:
        log = TrackerLog(
            "http://tracker", "t", transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body))
        )
        with pytest.raises(TrackerUnavailable):
            await bootstrap(InMemoryDeployedEnvironments(), log)

    async def test_an_unreachable_tracker_is_unavailable(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        log = TrackerLog("http://tracker", "t", transport=httpx.MockTransport(refuse))
        with pytest.raises(TrackerUnavailable):
            await bootstrap(InMemoryDeployedEnvironments(), log)
