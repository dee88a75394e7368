"""``Prefer: wait`` on the deployment bridge: reading the preference, waiting bounded, answering the outcome."""

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast, get_args

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ServerSelectionTimeoutError

from deploy_tracker import routes
from deploy_tracker.outcomes import OutcomeWatch, Waited, requested_wait
from registry_contract.auth import Principal
from registry_contract.documents import Document
from shared.chassis import problems

pytestmark = pytest.mark.unit
FRAUD = Principal(key_id="k-fraud", team="fraud", scopes=frozenset({"deployments:write"}))
REPORT = {
    "team": "fraud",
    "name": "card",
    "version": "1.0.0",
    "environment": "prod",
    "status": "deployed",
    "occurred_at": "2026-11-26T10:00:00Z",
}


class TestReadingThePreference:
    @pytest.mark.parametrize(
        ("headers", "seconds"),
        [
            (["wait=10"], 10),
            (["respond-async, wait=10"], 10),
            (["handling=strict; x=y, WAIT = 5"], 5),
            (['wait="7"'], 7),
            (["return=minimal", "wait=3"], 3),
            (["wait=1", "wait=2"], 1),  # only the first instance counts (RFC 7240 §2)
            (["wait=" + "9" * 5000], 10**9),
        ],
    )
    def test_the_first_wait_among_the_preferences_counts(self, headers: list[str], seconds: int) -> None:
        assert requested_wait(headers) == seconds

    @pytest.mark.parametrize("headers", [[], ["respond-async"], ["wait"], ["wait=abc"], ["wait=-1"], ["wait=²"]])
    def test_no_readable_wait_is_no_preference(self, headers: list[str]) -> None:
        assert requested_wait(headers) is None


@dataclass
class History:
    """Stands in for ``deployments``: the report's row shows up after ``misses`` lookups (never if ``None``)."""

    row: Document | None = None
    misses: int = 0
    error: Exception | None = None
    lookups: list[Any] = field(default_factory=list)

    async def find_one(self, query: Document) -> Document | None:
        self.lookups.append(query)
        if self.error is not None:
            raise self.error
        return self.row if self.row is not None and len(self.lookups) > self.misses else None


def watch(history: History, *, max_seconds: int = 30, concurrency: int = 8) -> OutcomeWatch:
    collection = cast("AsyncCollection[Document]", history)
    return OutcomeWatch(collection, max_seconds=max_seconds, concurrency=concurrency)


class TestWaitingForTheOutcome:
    async def test_the_row_of_the_report_is_looked_up_by_id_until_it_shows_up(self) -> None:
        history = History(row={"_id": "fraud/r1", "outcome": "applied"}, misses=2)
        waited = await watch(history).wait("fraud/r1", requested=10)
        assert waited == Waited(10, history.row)
        assert history.lookups == [{"_id": "fraud/r1"}] * 3

    async def test_the_wait_is_capped(self) -> None:
        waited = await watch(History(row={"_id": "fraud/r1"}), max_seconds=2).wait("fraud/r1", requested=3600)
        assert waited is not None and waited.seconds == 2

    async def test_a_wait_that_runs_out_has_no_row(self) -> None:
        assert await watch(History()).wait("fraud/r1", requested=0) == Waited(0, None)

    async def test_a_database_that_does_not_answer_ends_the_wait_without_a_row(self) -> None:
        history = History(error=ServerSelectionTimeoutError("no server"))
        assert await watch(history).wait("fraud/r1", requested=5) == Waited(5, None)

    async def test_past_the_waiting_requests_allowed_a_request_does_not_wait(self) -> None:
        bounded = watch(History(), concurrency=1)
        first = asyncio.create_task(bounded.wait("fraud/r1", requested=30))
        await asyncio.sleep(0)  # the first request takes the only slot
        try:
            assert await bounded.wait("fraud/r2", requested=30) is None
        finally:
            first.cancel()


@dataclass
class Bridge:
    published: list[Any] = field(default_factory=list)

    async def publish(self, event: Any, *, key: str, acting_for: str) -> None:
        self.published.append(event)


@dataclass
class Watch:
    """Answers every wait with ``row`` (given the waited-for key), or does not wait when ``busy``."""

    row: Any = None
    busy: bool = False
    keys: list[str] = field(default_factory=list)

    async def wait(self, report_key: str, *, requested: int) -> Waited | None:
        self.keys.append(report_key)
        if self.busy:
            return None
        return Waited(min(requested, 30), self.row(report_key) if self.row else None)


def bridge_app(watcher: Watch) -> tuple[FastAPI, Bridge]:
    app, bridge = FastAPI(), Bridge()
    problems.install(app)
    app.include_router(routes.router)
    app.state.report_bridge, app.state.outcome_watch = bridge, watcher
    reporter = get_args(routes.Reporter)[1].dependency  # the `requires("deployments:write")` of the route
    app.dependency_overrides[reporter] = lambda: FRAUD
    return app, bridge


async def post(watcher: Watch, prefer: str | None) -> httpx.Response:
    app, _ = bridge_app(watcher)
    headers = {"Prefer": prefer} if prefer else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bridge") as http:
        return await http.post("/v1/deployments/events", json=REPORT, headers=headers)


def recorded(outcome: str, **fields: Any) -> Any:
    def row(key: str) -> Document:
        base = {"_id": key, "report_id": key.split("/")[1], "outcome": outcome, "environment": "prod"}
        return base | {"status": "deployed", "previous_status": None} | fields

    return row


class TestAnsweringTheOutcome:
    async def test_without_the_preference_the_bridge_answers_202_at_once(self) -> None:
        watcher = Watch(row=recorded("applied"))
        response = await post(watcher, None)
        assert response.status_code == 202 and "Preference-Applied" not in response.headers
        assert watcher.keys == []

    async def test_an_applied_report_is_200_with_its_outcome(self) -> None:
        watcher = Watch(row=recorded("applied", skipped_deploying=True))
        response = await post(watcher, "wait=10")
        body = response.json()
        assert (response.status_code, response.headers["Preference-Applied"]) == (200, "wait=10")
        assert watcher.keys == [f"fraud/{body['event_id']}"]  # filed under the sender's team, like every report
        assert body | {"event_id": "-"} == {
            "event_id": "-",
            "outcome": "applied",
            "environment": "prod",
            "reported_status": "deployed",
            "status": "deployed",
            "previous_status": None,
            "skipped_deploying": True,
        }

    async def test_an_out_of_order_report_leaves_the_environment_where_it_was(self) -> None:
        response = await post(Watch(row=recorded("out_of_order", previous_status="rolled_back")), "wait=5")
        body = response.json()
        assert response.status_code == 200
        assert (body["outcome"], body["reported_status"], body["status"]) == ("out_of_order", "deployed", "rolled_back")

    @pytest.mark.parametrize(
        ("reason", "status"), [("not_approved", 409), ("conflict", 409), ("not_found", 404), ("forbidden", 403)]
    )
    async def test_a_refused_report_is_its_problem(self, reason: str, status: int) -> None:
        watcher = Watch(row=recorded("rejected", reason=reason, message="fraud/card 1.0.0 is not approved"))
        response = await post(watcher, "respond-async, wait=30")
        assert (response.status_code, response.headers["content-type"]) == (status, problems.PROBLEM_JSON)
        assert response.headers["Preference-Applied"] == "wait=30"
        assert response.json()["type"] == f"urn:registry:problem:{reason}"
        assert response.json()["detail"] == "fraud/card 1.0.0 is not approved"

    async def test_a_wait_that_runs_out_is_202_saying_it_waited(self) -> None:
        response = await post(Watch(row=None), "wait=3")
        assert (response.status_code, response.headers["Preference-Applied"]) == (202, "wait=3")
        assert response.json()["status"] == "accepted"

    async def test_a_request_that_cannot_wait_now_is_202_without_applying_the_preference(self) -> None:
        response = await post(Watch(busy=True), "wait=3")
        assert response.status_code == 202 and "Preference-Applied" not in response.headers

    async def test_an_unreadable_wait_is_ignored(self) -> None:
        watcher = Watch(row=recorded("applied"))
        response = await post(watcher, "wait=soon")
        assert response.status_code == 202 and watcher.keys == []
