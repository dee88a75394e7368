"""The tracker's own table of versions: kept from registration's events, asked of registration when unknown."""

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from deploy_tracker.handlers import handle_reports
from deploy_tracker.known_versions import (
    Registration,
    VersionLookup,
    apply_fact,
    fact_of,
    fact_of_item,
    row_of_lookup,
)
from deploy_tracker.memory import InMemoryRepository
from deploy_tracker.reports import Report
from deploy_tracker.routes import consistency_header
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.ids import model_id, version_id
from tests.factories import command_event

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
FRAUD = Principal(key_id="k-fraud", team="fraud", scopes=frozenset({"deployments:write"}))
VID, MID = version_id("fraud", "card", "1.0.0"), model_id("fraud", "card")
REF = {"model_id": MID, "team": "fraud", "name": "card", "version": "1.0.0"}


def registered(revision: int | None = 1) -> dict[str, Any]:
    data = REF | {"framework": "sklearn", "artifact_uri": "s3://b/m", "lifecycle": "active", "status": "registered"}
    return {"type": messages.MODEL_VERSION_REGISTERED, "data": data, "time": T0, "revision": revision}


def approval(to: str, revision: int | None) -> dict[str, Any]:
    data = REF | {"from": "pending", "to": to, "by": "k-approver", "comment": None}
    return {"type": messages.VERSION_APPROVAL_CHANGED, "data": data, "time": T0, "revision": revision}


def deleted(revision: int) -> dict[str, Any]:
    return {"type": messages.MODEL_VERSION_DELETED, "data": REF, "time": T0, "revision": revision}


def table(*items: dict[str, Any]) -> dict[str, Document]:
    rows: dict[str, Document] = {}
    for item in items:
        fact = fact_of_item(item)
        assert fact is not None
        apply_fact(rows, fact)
    return rows


def report(status: str, *, version: str = "1.0.0", environment: str = "prod") -> Report:
    data = {"team": "fraud", "name": "card", "version": version, "environment": environment, "status": status}
    return Report(command_event(messages.DEPLOY_STATUS_REPORTED, data | {"occurred_at": T0.isoformat()}), FRAUD)


def tracker(*items: dict[str, Any]) -> InMemoryRepository:
    repo = InMemoryRepository()
    repo.versions = table(*items)
    return repo


def emitted(repo: InMemoryRepository, event_type: str) -> list[Document]:
    return sorted((row for row in repo.outbox.values() if row["type"] == event_type), key=lambda r: r["position"])


class TestKeepingTheTable:
    def test_a_registered_version_is_known_never_reported_and_pending(self) -> None:
        row = table(registered())[VID]
        assert row | REF == row
        assert (row["status"], row["environments"], row["approval"], row["deleted"]) == ("registered", {}, None, False)

    def test_an_approval_is_kept_and_an_older_one_arriving_late_changes_nothing(self) -> None:
        rows = table(registered(), approval("approved", 5), approval("rejected", 3))
        assert (rows[VID]["approval"]["status"], rows[VID]["revision"]) == ("approved", 5)

    def test_an_event_without_a_revision_applies_in_its_order(self) -> None:
        rows = table(registered(None), approval("approved", None), approval("rejected", None))
        assert rows[VID]["approval"]["status"] == "rejected"

    def test_an_approval_before_its_registration_makes_the_version_known(self) -> None:
        rows = table(approval("approved", 5), registered(1))
        assert (rows[VID]["approval"]["status"], rows[VID]["team"]) == ("approved", "fraud")

    def test_a_deletion_flags_the_version(self) -> None:
        assert table(registered(), deleted(7))[VID]["deleted"] is True

    def test_other_events_and_events_without_a_version_are_no_facts(self) -> None:
        assert fact_of(messages.MODEL_UPDATED, REF, T0, 1) is None
        assert fact_of(messages.MODEL_VERSION_REGISTERED, {"team": "fraud"}, T0, 1) is None
        assert fact_of_item({"type": messages.MODEL_VERSION_REGISTERED, "data": "not a mapping"}) is None

    def test_a_revision_that_is_not_a_bounded_decimal_counts_as_none(self) -> None:
        for revision in ("12a", "9" * 21, True, 1.5):
            fact = fact_of_item(approval("approved", None) | {"revision": revision})
            assert fact is not None and fact.revision is None


class TestJudgingWithTheTable:
    async def test_a_registered_version_takes_reports(self) -> None:
        repo = tracker(registered())
        [row] = await handle_reports([report("deployed", environment="staging")], repo=repo)
        assert row["outcome"] == "applied"
        assert repo.versions[VID]["environments"]["staging"]["status"] == "deployed"
        assert repo.versions[VID]["status"] == "deployed"

    async def test_the_approval_gate_reads_the_approval_kept_from_events(self) -> None:
        gated = frozenset({"prod"})
        pending = tracker(registered())
        [row] = await handle_reports([report("deploying")], repo=pending, approval_environments=gated)
        assert (row["outcome"], row["reason"]) == ("rejected", "not_approved")
        approved = tracker(registered(), approval("approved", 2))
        [row] = await handle_reports([report("deploying")], repo=approved, approval_environments=gated)
        assert row["outcome"] == "applied"

    async def test_a_deleted_version_is_not_found(self) -> None:
        repo = tracker(registered(), deleted(2))
        [row] = await handle_reports([report("deploying", environment="staging")], repo=repo)
        assert (row["outcome"], row["reason"]) == ("rejected", "not_found")


class FakeLookup:
    def __init__(self, answer: Document | None) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, str]] = []

    async def __call__(self, team: str, name: str, version: str) -> Document | None:
        self.asked.append((team, name, version))
        return self.answer


LOOKED_UP = REF | {"version_id": VID, "approval": {"status": "approved"}, "deleted": False}


class TestAnUnknownVersion:
    async def test_is_asked_of_registration_once_kept_and_judged(self) -> None:
        repo, lookup = InMemoryRepository(), FakeLookup(row_of_lookup(LOOKED_UP))
        rows = await handle_reports([report("deploying"), report("deploying")], repo=repo, lookup=lookup)
        assert lookup.asked == [("fraud", "card", "1.0.0")]  # once for the batch
        assert [row["outcome"] for row in rows] == ["applied", "rejected"]  # deploying → deploying: a conflict
        kept = repo.versions[VID]
        assert (kept["approval"], kept["status"], kept["environments"]["prod"]["status"]) == (
            {"status": "approved"},
            "deploying",
            "deploying",
        )
        await handle_reports([report("deployed")], repo=repo, lookup=lookup)
        assert len(lookup.asked) == 1 and repo.versions[VID]["status"] == "deployed"  # known now

    async def test_registration_knowing_none_leaves_it_not_found(self) -> None:
        repo, lookup = InMemoryRepository(), FakeLookup(None)
        [row] = await handle_reports([report("deploying")], repo=repo, lookup=lookup)
        assert (row["outcome"], row["reason"]) == ("rejected", "not_found")
        assert repo.versions == {}

    async def test_a_version_registration_deleted_is_kept_deleted_and_not_found(self) -> None:
        repo, lookup = InMemoryRepository(), FakeLookup(row_of_lookup(LOOKED_UP | {"deleted": True}))
        [row] = await handle_reports([report("deploying")], repo=repo, lookup=lookup)
        assert row["reason"] == "not_found" and repo.versions[VID]["deleted"] is True


def registration(handler: Any) -> Registration:
    return Registration("http://registration", "t0ken", transport=httpx.MockTransport(handler))


class TestVersionLookup:
    async def test_asks_with_the_services_credential_and_answers_the_row(self) -> None:
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=LOOKED_UP)

        row = await VersionLookup(registration(answer))("fraud", "card", "1.0.0")
        assert row is not None and (row["_id"], row["approval"], row["status"]) == (
            VID,
            {"status": "approved"},
            "registered",
        )
        assert seen[0].url.path == "/internal/v1/versions/fraud/card/1.0.0"
        assert seen[0].headers["x-registry-service-token"] == "t0ken"

    async def test_a_miss_is_remembered_for_a_few_seconds(self) -> None:
        calls: list[str] = []

        def unknown(request: httpx.Request) -> httpx.Response:
            calls.append(request.url.path)
            return httpx.Response(404, json={})

        lookup = VersionLookup(registration(unknown), forget_after=60)
        assert await lookup("fraud", "card", "1.0.0") is None
        assert await lookup("fraud", "card", "1.0.0") is None
        assert await lookup("fraud", "card", "2.0.0") is None
        assert len(calls) == 2
        forgetful = VersionLookup(registration(unknown), forget_after=0)
        await forgetful("fraud", "card", "1.0.0")
        await forgetful("fraud", "card", "1.0.0")
        assert len(calls) == 4

    async def test_registration_away_is_a_miss_not_a_failure(self) -> None:
        def away(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        assert await VersionLookup(registration(away))("fraud", "card", "1.0.0") is None
        assert await VersionLookup(registration(lambda _: httpx.Response(503)))("fraud", "card", "1.0.0") is None

    async def test_misses_are_bounded(self) -> None:
        lookup = VersionLookup(registration(lambda _: httpx.Response(404)), max_misses=2)
        for number in ("1.0.0", "2.0.0", "3.0.0"):
            await lookup("fraud", "card", number)
        assert len(lookup._misses) == 2


class TestEvents:
    async def test_every_report_filed_under_the_model_is_recorded_and_an_applied_one_changes_status(self) -> None:
        repo = tracker(registered())
        applied, refused = report("deployed", environment="staging"), report("deploying")
        await handle_reports([applied], repo=repo)
        await handle_reports([refused], repo=repo, approval_environments={"prod"})
        recorded = [row["data"] for row in emitted(repo, messages.DEPLOYMENT_REPORT_RECORDED)]
        assert [(r["id"], r["outcome"], r["reason"]) for r in recorded] == [
            (applied.event.id, "applied", None),
            (refused.event.id, "rejected", "not_approved"),
        ]
        first = messages.DeploymentReportRecorded.model_validate(recorded[0])
        assert (first.model_id, first.version_id, first.environment, first.status) == (MID, VID, "staging", "deployed")
        assert first.position == repo.history[f"fraud/{applied.event.id}"]["position"]
        [changed] = emitted(repo, messages.DEPLOYMENT_STATUS_CHANGED)
        state = messages.DeploymentStatusChanged.model_validate(changed["data"]).environment_state
        assert state is not None and (state.status, state.report_id) == ("deployed", applied.event.id)
        assert {row["key"] for row in repo.outbox.values()} == {"fraud/card"}

    async def test_a_report_filed_under_no_model_records_nothing_for_the_read_side(self) -> None:
        repo = tracker(registered())
        await handle_reports([report("deploying", version="9.9.9")], repo=repo)
        assert emitted(repo, messages.DEPLOYMENT_REPORT_RECORDED) == []

    async def test_the_history_row_carries_the_models_revision_after_the_report(self) -> None:
        repo = tracker(registered())
        sent = report("deployed", environment="staging")
        [row] = await handle_reports([sent], repo=repo)
        last = max(r["position"] for r in repo.outbox.values())
        stored = repo.history[f"fraud/{sent.event.id}"]
        assert stored["revision"] == last
        assert consistency_header(stored) == {"X-Registry-Consistency": f"d.{MID}.{last}"}
        assert row["revision"] == last

    def test_no_token_for_a_report_filed_under_no_model(self) -> None:
        assert consistency_header({"_id": "fraud/x", "outcome": "rejected"}) == {}


GATED = frozenset({"prod"})
APPROVED_AT_9 = row_of_lookup(LOOKED_UP | {"revision": 9})


class TestTheApprovalRecheck:
    """A report the gate would refuse asks registration once more: the approval event may be on its way."""

    async def test_an_approval_registration_confirms_is_kept_and_the_report_applied(self) -> None:
        repo, recheck = tracker(registered()), FakeLookup(APPROVED_AT_9)
        reports = [report("deploying"), report("deployed")]
        rows = await handle_reports(reports, repo=repo, approval_environments=GATED, recheck=recheck)
        assert recheck.asked == [("fraud", "card", "1.0.0")]  # once for the batch
        assert [row["outcome"] for row in rows] == ["applied", "applied"]
        kept = repo.versions[VID]
        assert (kept["approval"], kept["revision"], kept["status"]) == ({"status": "approved"}, 9, "deployed")

    async def test_an_older_event_arriving_later_does_not_undo_it(self) -> None:
        repo = tracker(registered())
        await handle_reports(
            [report("deploying")], repo=repo, approval_environments=GATED, recheck=FakeLookup(APPROVED_AT_9)
        )
        fact = fact_of_item(approval("pending", 5))
        assert fact is not None
        apply_fact(repo.versions, fact)
        assert repo.versions[VID]["approval"] == {"status": "approved"}

    async def test_a_newer_event_already_kept_is_not_overwritten(self) -> None:
        repo = tracker(registered(), approval("rejected", 12))
        answer = row_of_lookup(LOOKED_UP | {"revision": 9})
        [row] = await handle_reports(
            [report("deploying")], repo=repo, approval_environments=GATED, recheck=FakeLookup(answer)
        )
        assert (row["outcome"], row["reason"]) == ("rejected", "not_approved")  # the answer is older
        assert (repo.versions[VID]["approval"]["status"], repo.versions[VID]["revision"]) == ("rejected", 12)

    async def test_still_pending_is_refused_not_approved(self) -> None:
        repo = tracker(registered())
        recheck = FakeLookup(row_of_lookup(LOOKED_UP | {"approval": {"status": "pending"}, "revision": 9}))
        [row] = await handle_reports([report("deploying")], repo=repo, approval_environments=GATED, recheck=recheck)
        assert (row["outcome"], row["reason"]) == ("rejected", "not_approved")
        assert len(recheck.asked) == 1 and repo.versions[VID]["approval"] is None

    async def test_registration_away_is_refused_not_approved(self) -> None:
        def away(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        for handler in (away, lambda _: httpx.Response(503)):
            recheck = VersionLookup(registration(handler)).recheck
            repo = tracker(registered())
            [row] = await handle_reports([report("deploying")], repo=repo, approval_environments=GATED, recheck=recheck)
            assert (row["outcome"], row["reason"]) == ("rejected", "not_approved")

    async def test_reports_the_gate_lets_through_ask_nothing(self) -> None:
        repo, recheck = tracker(registered()), FakeLookup(APPROVED_AT_9)
        await handle_reports(
            [report("deploying", environment="staging")], repo=repo, approval_environments=GATED, recheck=recheck
        )
        assert recheck.asked == []

    async def test_the_recheck_passes_the_miss_cache_and_reads_the_revision(self) -> None:
        answers = iter([httpx.Response(404), httpx.Response(200, json=LOOKED_UP | {"revision": "9"})])
        lookup = VersionLookup(registration(lambda _: next(answers)), forget_after=60)
        assert await lookup("fraud", "card", "1.0.0") is None  # a miss, remembered
        row = await lookup.recheck("fraud", "card", "1.0.0")
        assert row is not None and (row["approval"], row["revision"]) == ({"status": "approved"}, 9)
