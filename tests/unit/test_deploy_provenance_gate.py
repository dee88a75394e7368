"""The provenance gate: environments where a version goes to work only with a verified signature."""

from datetime import UTC, datetime
from typing import Any

import pytest

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.handlers import handle_reports
from deploy_tracker.known_versions import apply_fact, fact_of, row_of_lookup
from deploy_tracker.memory import InMemoryRepository
from deploy_tracker.reports import Report
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.ids import model_id, version_id
from tests.factories import command_event

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
FRAUD = Principal(key_id="k-fraud", team="fraud", scopes=frozenset({"deployments:write"}))
SIGNED_ONLY = frozenset({"secure"})
VID = version_id("fraud", "card", "1.0.0")


def tracker(*, verified: bool | None) -> InMemoryRepository:
    """Version 1.0.0 of fraud/card, never reported; ``verified`` None: a row from before the flag existed."""
    repo = InMemoryRepository()
    row: dict[str, Any] = {
        "_id": VID,
        "model_id": model_id("fraud", "card"),
        "team": "fraud",
        "name": "card",
        "version": "1.0.0",
        "status": "registered",
    }
    if verified is not None:
        row["provenance_verified"] = verified
    repo.versions[VID] = row
    return repo


def report(status: str, environment: str = "secure") -> Report:
    data = {"team": "fraud", "name": "card", "version": "1.0.0", "environment": environment, "status": status}
    return Report(command_event(messages.DEPLOY_STATUS_REPORTED, data | {"occurred_at": T0.isoformat()}), FRAUD)


async def outcome(repo: InMemoryRepository, sent: Report) -> tuple[str, str | None]:
    [row] = await handle_reports([sent], repo=repo, provenance_environments=SIGNED_ONLY)
    return row["outcome"], row.get("reason")


class TestGate:
    @pytest.mark.parametrize("status", ["deploying", "deployed"])
    @pytest.mark.parametrize("verified", [False, None])
    async def test_a_version_without_verified_provenance_is_refused_unsigned(
        self, status: str, verified: bool | None
    ) -> None:
        repo = tracker(verified=verified)
        assert await outcome(repo, report(status)) == ("rejected", "unsigned")
        [rejected] = [row["data"] for row in repo.outbox.values() if row["type"] == messages.COMMAND_REJECTED]
        assert rejected["reason"] == "unsigned"
        assert "has no verified provenance, which secure requires" in rejected["message"]
        assert "DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS" in rejected["message"]
        assert not (repo.versions[VID].get("environments") or {})

    async def test_a_version_with_verified_provenance_goes_to_work(self) -> None:
        repo = tracker(verified=True)
        assert await outcome(repo, report("deployed")) == ("applied", None)
        assert repo.versions[VID]["environments"]["secure"]["status"] == "deployed"

    async def test_environments_off_the_list_take_unsigned_versions(self) -> None:
        assert await outcome(tracker(verified=False), report("deployed", "staging")) == ("applied", None)

    async def test_stopping_is_never_gated(self) -> None:
        assert await outcome(tracker(verified=False), report("failed")) == ("applied", None)

    async def test_no_environment_is_gated_unless_listed(self) -> None:
        [row] = await handle_reports([report("deployed")], repo=tracker(verified=False))
        assert row["outcome"] == "applied"


class TestSetting:
    def test_the_setting_is_comma_separated_and_empty_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        assert DeployTrackerSettings().provenance_environments == ()
        monkeypatch.setenv("DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS", "secure, prod-eu,")
        assert DeployTrackerSettings().provenance_environments == ("secure", "prod-eu")

    def test_both_gates_read_the_same_forms_and_the_approval_gates_json_still_works(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert DeployTrackerSettings().approval_environments == ("prod",)
        monkeypatch.setenv("DEPLOY_TRACKER_APPROVAL_ENVIRONMENTS", '["prod", "prod-eu"]')
        monkeypatch.setenv("DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS", '["secure"]')
        settings = DeployTrackerSettings()
        assert (settings.approval_environments, settings.provenance_environments) == (("prod", "prod-eu"), ("secure",))
        monkeypatch.setenv("DEPLOY_TRACKER_APPROVAL_ENVIRONMENTS", "prod, prod-eu")
        assert DeployTrackerSettings().approval_environments == ("prod", "prod-eu")
        monkeypatch.setenv("DEPLOY_TRACKER_APPROVAL_ENVIRONMENTS", "[]")
        assert DeployTrackerSettings().approval_environments == ()


class TestKnownVersions:
    def registered(self, provenance: dict[str, Any] | None, revision: int = 5) -> Any:
        data = {"model_id": "m", "team": "fraud", "name": "card", "version": "1.0.0", "provenance": provenance}
        return fact_of(messages.MODEL_VERSION_REGISTERED, data, T0, revision)

    def approved(self, revision: int) -> Any:
        data = {"model_id": "m", "team": "fraud", "name": "card", "version": "1.0.0", "to": "approved"}
        return fact_of(messages.VERSION_APPROVAL_CHANGED, data, T0, revision)

    def test_the_table_learns_verified_provenance_from_the_registered_event(self) -> None:
        rows: dict[str, Any] = {}
        apply_fact(rows, self.registered({"verified": True}))
        assert rows[VID]["provenance_verified"] is True

    def test_a_version_registered_without_signature_is_not_verified(self) -> None:
        rows: dict[str, Any] = {}
        apply_fact(rows, self.registered(None))
        assert rows[VID]["provenance_verified"] is False

    def test_the_flag_holds_whatever_events_came_before(self) -> None:
        rows: dict[str, Any] = {}
        apply_fact(rows, self.approved(revision=9))
        apply_fact(rows, self.registered({"verified": True}, revision=5))  # older, yet never undone
        assert rows[VID]["provenance_verified"] is True and rows[VID]["approval"]["status"] == "approved"

    def test_a_row_made_from_an_approval_event_does_not_know_whether_the_version_was_signed(self) -> None:
        rows: dict[str, Any] = {}
        apply_fact(rows, self.approved(revision=9))
        assert rows[VID]["provenance_verified"] is None

    def test_a_registration_event_without_the_field_leaves_it_unknown(self) -> None:
        data = {"model_id": "m", "team": "fraud", "name": "card", "version": "1.0.0"}  # from before provenance
        fact = fact_of(messages.MODEL_VERSION_REGISTERED, data, T0, 5)
        assert fact is not None
        rows: dict[str, Any] = {}
        apply_fact(rows, fact)
        assert rows[VID]["provenance_verified"] is None
        assert row_of_lookup({k: data[k] for k in data})["provenance_verified"] is None

    def test_a_row_registration_describes_carries_the_flag(self) -> None:
        answer = {"model_id": "m", "team": "fraud", "name": "card", "version": "1.0.0", "provenance_verified": True}
        assert row_of_lookup(answer)["provenance_verified"] is True
        assert row_of_lookup(answer | {"provenance_verified": False})["provenance_verified"] is False


class TestRecheck:
    """A version whose row does not know whether it was signed is asked of registration before ``unsigned``."""

    def asker(self, verified: bool | None) -> tuple[Any, list[str]]:
        asked: list[str] = []

        async def recheck(team: str, name: str, version: str) -> dict[str, Any] | None:
            asked.append(version)
            answer = {"model_id": model_id("fraud", "card"), "team": team, "name": name, "version": version}
            return row_of_lookup(answer | {"provenance_verified": verified})

        return recheck, asked

    async def test_a_signed_version_the_row_did_not_know_of_goes_to_work_and_the_row_learns_it(self) -> None:
        repo, (recheck, asked) = tracker(verified=None), self.asker(True)
        [row] = await handle_reports(
            [report("deployed")], repo=repo, provenance_environments=SIGNED_ONLY, recheck=recheck
        )
        assert (row["outcome"], asked) == ("applied", ["1.0.0"])
        assert repo.versions[VID]["provenance_verified"] is True

    async def test_an_unsigned_version_registration_confirms_is_refused_and_never_asked_again(self) -> None:
        repo, (recheck, asked) = tracker(verified=None), self.asker(False)
        for status in ("deploying", "deployed"):
            [row] = await handle_reports(
                [report(status)], repo=repo, provenance_environments=SIGNED_ONLY, recheck=recheck
            )
            assert (row["outcome"], row.get("reason")) == ("rejected", "unsigned")
        assert asked == ["1.0.0"] and repo.versions[VID]["provenance_verified"] is False

    async def test_a_version_known_unsigned_is_refused_without_asking(self) -> None:
        repo, (recheck, asked) = tracker(verified=False), self.asker(True)
        [row] = await handle_reports(
            [report("deployed")], repo=repo, provenance_environments=SIGNED_ONLY, recheck=recheck
        )
        assert row.get("reason") == "unsigned" and asked == []
