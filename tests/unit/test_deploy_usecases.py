"""The deploy tracker's use cases over the in-memory repository: reports, and the webhook fan-out policy."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy_tracker.handlers import handle_reports
from deploy_tracker.memory import InMemoryRepository
from deploy_tracker.reports import Report
from deploy_tracker.webhook_fanout import deliveries, teams_of
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from registry_contract.ids import model_id, version_id
from tests.factories import command_event

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
FRAUD = Principal(key_id="k-fraud", team="fraud", scopes=frozenset({"deployments:write"}))
RISK = Principal(key_id="k-risk", team="risk", scopes=frozenset({"deployments:write"}))


GATED = frozenset({"prod"})  # the service's default
# What a not_approved refusal says would allow the report: an approval, or the gated environments' setting.
APPROVE_FIRST = (
    "a key with models:approve approves it first; DEPLOY_TRACKER_APPROVAL_ENVIRONMENTS lists the environments "
    "that need approval"
)


def tracker(*models: tuple[str, str], approval: str | None = None) -> InMemoryRepository:
    """A repository holding version 1.0.0 of each (team, name), never reported (no ``approval``: never decided)."""
    repo = InMemoryRepository()
    for team, name in models:
        vid = version_id(team, name, "1.0.0")
        repo.versions[vid] = {
            "_id": vid,
            "model_id": model_id(team, name),
            "team": team,
            "name": name,
            "version": "1.0.0",
            "status": "registered",
        }
        if approval is not None:
            repo.versions[vid]["approval"] = {"status": approval, "by": "k-approver", "at": T0, "comment": None}
    return repo


def report(
    status: str,
    *,
    by: Principal | None = FRAUD,
    team: str = "fraud",
    at: datetime = T0,
    event_id: str | None = None,
    **fields: Any,
) -> Report:
    data = {"team": team, "name": "card", "version": "1.0.0", "environment": "prod", "status": status}
    data |= {"occurred_at": at.isoformat(), **fields}
    return Report(command_event(messages.DEPLOY_STATUS_REPORTED, data, event_id=event_id), by)


def emitted(repo: InMemoryRepository, event_type: str) -> list[dict[str, Any]]:
    return [row for row in repo.outbox.values() if row["type"] == event_type]


def rejection(repo: InMemoryRepository) -> dict[str, Any]:
    [row] = emitted(repo, messages.COMMAND_REJECTED)
    assert not emitted(repo, messages.DEPLOYMENT_STATUS_CHANGED)
    data: dict[str, Any] = row["data"]
    return data


def prod(repo: InMemoryRepository, team: str = "fraud") -> dict[str, Any]:
    """The stored state of ``prod`` for the team's version 1.0.0 (empty: never reported)."""
    environments = repo.versions[version_id(team, "card", "1.0.0")].get("environments") or {}
    found: dict[str, Any] = environments.get("prod", {})
    return found


class TestApplyingReports:
    async def test_deploying_then_deployed_moves_the_environment_and_emits_each_change(self) -> None:
        repo = tracker(("fraud", "card"))
        first = report("deploying")
        await handle_reports([first], repo=repo)
        await handle_reports([report("deployed", at=T0 + timedelta(minutes=1))], repo=repo)
        changes = [row["data"] for row in emitted(repo, messages.DEPLOYMENT_STATUS_CHANGED)]
        assert [(c["previous_status"], c["status"], c["overall_status"]) for c in changes] == [
            (None, "deploying", "deploying"),
            ("deploying", "deployed", "deployed"),
        ]
        row = emitted(repo, messages.DEPLOYMENT_STATUS_CHANGED)[0]
        assert (row["key"], row["team"], row["model_id"]) == ("fraud/card", "fraud", model_id("fraud", "card"))
        assert (row["causation_id"], row["correlation_id"]) == (first.event.id, first.event.correlation_id)
        assert (prod(repo)["status"], prod(repo)["occurred_at"]) == ("deployed", T0 + timedelta(minutes=1))
        assert repo.versions[version_id("fraud", "card", "1.0.0")]["status"] == "deployed"
        assert [h["outcome"] for h in repo.history.values()] == ["applied", "applied"]

    async def test_a_later_report_in_the_same_batch_starts_from_the_earlier_one(self) -> None:
        repo = tracker(("fraud", "card"))
        history = await handle_reports(
            [report("deploying"), report("deployed", at=T0 + timedelta(minutes=1))], repo=repo
        )
        assert [(h["outcome"], h["previous_status"]) for h in history] == [("applied", None), ("applied", "deploying")]
        assert [h["position"] for h in history] == sorted({h["position"] for h in history})
        assert prod(repo)["status"] == "deployed"

    async def test_an_older_report_is_kept_in_history_but_changes_nothing(self) -> None:
        repo = tracker(("fraud", "card"))
        await handle_reports([report("deploying")], repo=repo)
        [late] = await handle_reports([report("failed", at=T0 - timedelta(minutes=1))], repo=repo)
        assert (late["outcome"], late["status"], late["previous_status"]) == ("out_of_order", "failed", "deploying")
        assert len(emitted(repo, messages.DEPLOYMENT_STATUS_CHANGED)) == 1
        assert prod(repo)["status"] == "deploying"


class TestFirstReportsAndRedeploys:
    @pytest.mark.parametrize("status", ["deployed", "failed"])
    async def test_a_pipeline_reporting_only_the_end_state_is_applied_saying_deploying_was_skipped(
        self, status: str
    ) -> None:
        repo = tracker(("fraud", "card"))
        [row] = await handle_reports([report(status)], repo=repo)
        assert (row["outcome"], row["previous_status"], row["skipped_deploying"]) == ("applied", None, True)
        [changed] = [r["data"] for r in emitted(repo, messages.DEPLOYMENT_STATUS_CHANGED)]
        assert (changed["previous_status"], changed["status"], changed["overall_status"]) == (None, status, status)
        assert "skipped_deploying" not in changed  # the event's contract model has no such field
        assert prod(repo)["status"] == status

    async def test_a_report_after_deploying_skipped_nothing(self) -> None:
        repo = tracker(("fraud", "card"))
        sent = [report("deploying"), report("deployed", at=T0 + timedelta(minutes=1))]
        history = await handle_reports(sent, repo=repo)
        assert [h["skipped_deploying"] for h in history] == [False, False]

    @pytest.mark.parametrize("stopped", ["rolled_back", "retired"])
    async def test_a_version_rolled_back_or_retired_can_be_deployed_again(self, stopped: str) -> None:
        repo = tracker(("fraud", "card"))
        steps = ["deployed", stopped, "deploying", "deployed"]
        sent = [report(status, at=T0 + timedelta(minutes=n)) for n, status in enumerate(steps)]
        history = await handle_reports(sent, repo=repo)
        assert [(h["outcome"], h["previous_status"]) for h in history] == [
            ("applied", None),
            ("applied", "deployed"),
            ("applied", stopped),
            ("applied", "deploying"),
        ]
        assert prod(repo)["status"] == "deployed"


class TestApprovalGate:
    """``prod`` requires approval here, as the service's default setting says."""

    @pytest.mark.parametrize("status", ["deploying", "deployed"])
    async def test_an_approved_version_goes_to_work_in_a_gated_environment(self, status: str) -> None:
        repo = tracker(("fraud", "card"), approval="approved")
        [row] = await handle_reports([report(status)], repo=repo, approval_environments=GATED)
        assert row["outcome"] == "applied" and prod(repo)["status"] == status

    @pytest.mark.parametrize(
        ("approval", "shown"), [(None, "pending"), ("pending", "pending"), ("rejected", "rejected")]
    )
    @pytest.mark.parametrize("status", ["deploying", "deployed"])
    async def test_a_version_not_approved_is_refused_saying_where_its_approval_stands(
        self, approval: str | None, shown: str, status: str
    ) -> None:
        repo = tracker(("fraud", "card"), approval=approval)
        sent = report(status)
        [row] = await handle_reports([sent], repo=repo, approval_environments=GATED)
        rejected = rejection(repo)
        assert rejected["reason"] == "not_approved"
        assert rejected["message"] == f"fraud/card 1.0.0 is not approved for prod (approval: {shown}): {APPROVE_FIRST}"
        assert (rejected["command_id"], rejected["team"], rejected["name"]) == (sent.event.id, "fraud", "card")
        assert (row["outcome"], row["reason"], row["previous_status"]) == ("rejected", "not_approved", None)
        assert row["version_id"] == version_id("fraud", "card", "1.0.0") and row["environment"] == "prod"
        assert prod(repo) == {}

    async def test_an_environment_that_is_not_gated_takes_a_pending_version(self) -> None:
        repo = tracker(("fraud", "card"))
        sent = report("deployed", environment="staging")
        [row] = await handle_reports([sent], repo=repo, approval_environments=GATED)
        assert row["outcome"] == "applied"

    @pytest.mark.parametrize("status", ["failed", "rolled_back", "retired"])
    async def test_saying_something_stopped_is_never_gated(self, status: str) -> None:
        # Deployed while approved; the approval is withdrawn; the pipeline must still be able to say
        # it failed, rolled back or retired (a first `failed` too).
        repo = tracker(("fraud", "card"), approval="approved")
        if status != "failed":
            await handle_reports([report("deployed")], repo=repo, approval_environments=GATED)
        repo.versions[version_id("fraud", "card", "1.0.0")]["approval"]["status"] = "rejected"
        [row] = await handle_reports(
            [report(status, at=T0 + timedelta(minutes=1))], repo=repo, approval_environments=GATED
        )
        assert row["outcome"] == "applied" and prod(repo)["status"] == status

    async def test_the_gate_comes_before_the_state_machine(self) -> None:
        # An unapproved version's report to go to work is `not_approved` even where the state
        # machine would call it a conflict: approval is what the pipeline has to fix first.
        repo = tracker(("fraud", "card"), approval="approved")
        await handle_reports([report("deploying")], repo=repo, approval_environments=GATED)
        repo.versions[version_id("fraud", "card", "1.0.0")]["approval"]["status"] = "pending"
        later = T0 + timedelta(minutes=1)
        [row] = await handle_reports([report("deploying", at=later)], repo=repo, approval_environments=GATED)
        assert (row["reason"], row["previous_status"]) == ("not_approved", "deploying")
        assert prod(repo)["status"] == "deploying"


class TestRejectedReports:
    async def test_a_transition_the_state_machine_forbids_is_a_conflict_filed_under_the_model(self) -> None:
        repo = tracker(("fraud", "card"))
        sent = report("retired")
        [row] = await handle_reports([sent], repo=repo)
        rejected = rejection(repo)
        assert rejected["reason"] == "conflict"
        assert rejected["message"] == "registered → retired is not allowed in prod"
        assert (rejected["command_id"], rejected["team"], rejected["name"]) == (sent.event.id, "fraud", "card")
        assert (row["outcome"], row["reason"], row["previous_status"]) == ("rejected", "conflict", None)
        assert row["version_id"] == version_id("fraud", "card", "1.0.0")
        assert prod(repo) == {}

    async def test_a_report_without_a_valid_key_is_unauthenticated_and_filed_under_nobody(self) -> None:
        repo = tracker(("fraud", "card"))
        sent = report("deploying", by=None)
        [row] = await handle_reports([sent], repo=repo)
        assert rejection(repo)["reason"] == "unauthenticated"
        [outbox] = repo.outbox.values()
        assert (outbox["key"], outbox["team"], outbox["model_id"]) == ("anonymous", None, None)
        assert (row["_id"], row["reporter"], row["version_id"]) == (f"~anonymous/{sent.event.id}", None, None)
        assert "environment" not in row and prod(repo) == {}

    async def test_another_teams_key_is_forbidden_and_its_claim_stays_its_own(self) -> None:
        repo = tracker(("fraud", "card"))
        [row] = await handle_reports([report("deploying", by=RISK)], repo=repo)
        rejected = rejection(repo)
        assert (rejected["reason"], rejected["team"], rejected["name"]) == ("forbidden", "risk", None)
        assert [outbox["key"] for outbox in repo.outbox.values()] == ["risk"]
        assert row["claimed"] == {"team": "fraud", "name": "card", "version": "1.0.0"}
        assert row["version_id"] is None and "environment" not in row
        assert prod(repo) == {}

    async def test_a_key_of_the_team_without_the_deployments_scope_is_forbidden(self) -> None:
        repo = tracker(("fraud", "card"))
        reader = Principal(key_id="k-read", team="fraud", scopes=frozenset({"models:read"}))
        await handle_reports([report("deploying", by=reader)], repo=repo)
        assert rejection(repo)["reason"] == "forbidden" and "deployments:write" in rejection(repo)["message"]

    async def test_a_version_that_does_not_exist_is_not_found(self) -> None:
        repo = tracker(("fraud", "card"))
        [row] = await handle_reports([report("deploying", version="9.9.9")], repo=repo)
        rejected = rejection(repo)
        assert (rejected["reason"], rejected["message"]) == ("not_found", "fraud/card has no version 9.9.9")
        assert (rejected["team"], rejected["name"]) == ("fraud", "card")
        assert row["version_id"] == version_id("fraud", "card", "9.9.9") and "model_id" not in row

    async def test_invalid_data_is_rejected_naming_the_field_and_filed_under_the_sender(self) -> None:
        repo = tracker(("fraud", "card"))
        [row] = await handle_reports([report("launched")], repo=repo)
        rejected = rejection(repo)
        assert rejected["reason"] == "invalid" and rejected["message"].startswith("invalid report: status: ")
        assert (rejected["team"], rejected["name"]) == ("fraud", None)
        assert (row["outcome"], row["version_id"]) == ("rejected", None)

    async def test_another_event_type_on_the_topic_is_invalid(self) -> None:
        repo = tracker(("fraud", "card"))
        event = command_event("deploy.event.something_else", {})
        await handle_reports([Report(event, FRAUD)], repo=repo)
        assert rejection(repo)["message"] == "unsupported report type 'deploy.event.something_else'"


class TestIdempotency:
    async def test_a_redelivered_report_writes_and_emits_nothing(self) -> None:
        repo = tracker(("fraud", "card"))
        sent = report("deploying")
        assert len(await handle_reports([sent, sent], repo=repo)) == 1
        assert await handle_reports([sent], repo=repo) == []
        assert len(repo.history) == 1 and len(repo.outbox) == 2  # the report recorded, the status changed

    async def test_the_same_id_from_two_teams_is_two_reports(self) -> None:
        # One team must not suppress another's report by sending its id first.
        repo = tracker(("fraud", "card"), ("risk", "card"))
        shared_id = uuid.uuid4().hex
        await handle_reports([report("deploying", event_id=shared_id)], repo=repo)
        await handle_reports([report("deploying", by=RISK, team="risk", event_id=shared_id)], repo=repo)
        assert set(repo.history) == {f"fraud/{shared_id}", f"risk/{shared_id}"}
        changed = emitted(repo, messages.DEPLOYMENT_STATUS_CHANGED)
        assert sorted(row["key"] for row in changed) == ["fraud/card", "risk/card"]
        assert prod(repo, "risk")["status"] == "deploying"


def subscription(team: str, *event_types: str, active: bool = True) -> dict[str, Any]:
    return {"_id": f"wh_{uuid.uuid4().hex[:8]}", "team": team, "event_types": list(event_types), "active": active}


def status_changed(team: str) -> CloudEvent:
    return CloudEvent(source="/t", type=messages.DEPLOYMENT_STATUS_CHANGED, data={"team": team})


class TestWebhookFanOut:
    def test_a_subscription_gets_its_teams_events_of_the_types_it_chose(self) -> None:
        mine, everything = subscription("fraud", messages.DEPLOYMENT_STATUS_CHANGED), subscription("fraud", "*")
        other_type = subscription("fraud", messages.MODEL_VERSION_REGISTERED)
        event = status_changed("fraud")
        found = deliveries([event], [mine, other_type, everything], T0)
        assert [d["_id"] for d in found] == [f"{event.id}:{mine['_id']}", f"{event.id}:{everything['_id']}"]
        assert found[0] | {"status": "pending", "attempts": 0, "next_attempt_at": T0, "team": "fraud"} == found[0]
        assert json.loads(found[0]["body"])["id"] == event.id

    def test_another_teams_or_an_inactive_subscription_gets_nothing(self) -> None:
        others = [subscription("risk", "*"), subscription("fraud", "*", active=False)]
        assert deliveries([status_changed("fraud")], others, T0) == []

    def test_only_the_teams_named_in_events_are_asked_for(self) -> None:
        nameless = CloudEvent(source="/t", type="t", data={"team": 7})
        assert teams_of([status_changed("risk"), status_changed("fraud"), status_changed("risk"), nameless]) == [
            "fraud",
            "risk",
        ]
