"""Aliases, approvals, model metadata, lifecycle moves and deletes, through the command handler."""

from typing import Any

import pytest

from registration.deployments import StatusSeen
from registration.handlers import Command, Outcome, handle_commands
from registration.repository import InMemoryRepository
from registration.routes import version_of
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from tests.factories import PRODUCER, command_event, register_event

pytestmark = pytest.mark.unit
SCHEMES = ["s3"]
FRAUD_WRITER = Principal(key_id="fw000001", team="fraud", scopes=frozenset({"models:read", "models:write"}))
FRAUD_APPROVER = Principal(key_id="fa000001", team="fraud", scopes=frozenset({"models:approve"}))
CARD = {"team": "fraud", "name": "card"}


async def run(repo: InMemoryRepository, *events: CloudEvent, principal: Principal = PRODUCER) -> list[Outcome]:
    return await handle_commands([Command(e, principal) for e in events], repo=repo, artifact_schemes=SCHEMES)


async def one(repo: InMemoryRepository, ce_type: str, principal: Principal = PRODUCER, **data: Any) -> Outcome:
    [outcome] = await run(repo, command_event(ce_type, CARD | data), principal=principal)
    return outcome


def reason(outcome: Outcome) -> str | None:
    return str(outcome.event.data["reason"]) if outcome.rejected else None


async def card_with(*versions: str, **fields: Any) -> InMemoryRepository:
    repo = InMemoryRepository()
    await run(repo, *(register_event("fraud", "card", v, **fields) for v in versions))
    return repo


def model(repo: InMemoryRepository) -> dict[str, Any]:
    [found] = repo.models.values()
    return found


class TestAliases:
    async def test_an_alias_points_at_a_version_and_moves_with_its_previous_target_in_the_event(self) -> None:
        repo = await card_with("1.0.0", "1.1.0")
        first = await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")
        moved = await one(repo, messages.SET_ALIAS, alias="champion", version="1.1.0")
        assert first.event.type == messages.ALIAS_SET and first.event.data["previous_version"] is None
        assert (moved.event.data["version"], moved.event.data["previous_version"]) == ("1.1.0", "1.0.0")
        assert model(repo)["aliases"] == {"champion": "1.1.0"}

    async def test_setting_an_alias_to_the_version_it_names_is_accepted_and_changes_nothing(self) -> None:
        repo = await card_with("1.0.0")
        first = await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")
        again = await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")
        assert (again.event.type, again.event.data["version"]) == (messages.ALIAS_SET, "1.0.0")
        assert again.event.data["previous_version"] == "1.0.0" and first.event.id != again.event.id
        assert model(repo)["aliases"] == {"champion": "1.0.0"}

    async def test_removing_an_alias_names_what_it_pointed_at(self) -> None:
        repo = await card_with("1.0.0")
        await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")
        removed = await one(repo, messages.REMOVE_ALIAS, alias="champion")
        assert (removed.event.type, removed.event.data["previous_version"]) == (messages.ALIAS_REMOVED, "1.0.0")
        assert model(repo)["aliases"] == {}
        assert reason(await one(repo, messages.REMOVE_ALIAS, alias="champion")) == "not_found"

    async def test_an_alias_needs_an_existing_unarchived_version(self) -> None:
        repo = await card_with("1.0.0")
        assert reason(await one(repo, messages.SET_ALIAS, alias="champion", version="9.9.9")) == "not_found"
        await one(repo, messages.SET_VERSION_LIFECYCLE, version="1.0.0", state="archived")
        assert reason(await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")) == "conflict"

    async def test_an_alias_name_is_a_slug(self) -> None:
        repo = await card_with("1.0.0")
        assert reason(await one(repo, messages.SET_ALIAS, alias="Champion!", version="1.0.0")) == "invalid"

    async def test_another_team_cannot_move_an_alias(self) -> None:
        repo = await card_with("1.0.0")
        risk = Principal(key_id="rw000001", team="risk", scopes=frozenset({"models:write"}))
        assert reason(await one(repo, messages.SET_ALIAS, risk, alias="champion", version="1.0.0")) == "forbidden"


class TestApproval:
    async def test_an_approver_approves_and_the_event_says_who_and_from_what(self) -> None:
        repo = await card_with("1.0.0")
        outcome = await one(
            repo, messages.SET_APPROVAL, FRAUD_APPROVER, version="1.0.0", status="approved", comment="ok"
        )
        assert outcome.event.type == messages.VERSION_APPROVAL_CHANGED
        assert (outcome.event.data["from"], outcome.event.data["to"], outcome.event.data["by"]) == (
            "pending",
            "approved",
            "fa000001",
        )
        [version] = repo.versions.values()
        assert (version["approval"]["status"], version["approval"]["comment"]) == ("approved", "ok")

    async def test_registering_does_not_let_a_key_approve(self) -> None:
        repo = await card_with("1.0.0")
        outcome = await one(repo, messages.SET_APPROVAL, FRAUD_WRITER, version="1.0.0", status="approved")
        assert reason(outcome) == "forbidden" and "models:approve" in outcome.event.data["message"]


class TestAnswersShowAliases:
    async def test_a_changed_version_is_answered_with_the_aliases_that_name_it(self) -> None:
        repo = await card_with("1.0.0")
        await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")
        approved = await one(repo, messages.SET_APPROVAL, FRAUD_APPROVER, version="1.0.0", status="approved")
        updated = await one(repo, messages.UPDATE_MODEL_VERSION, version="1.0.0", description="scores cards")
        deprecated = await one(repo, messages.SET_VERSION_LIFECYCLE, version="1.0.0", state="deprecated")
        assert [version_of(o).aliases for o in (approved, updated, deprecated)] == [["champion"]] * 3
        [stored] = repo.versions.values()
        assert "aliases" not in stored  # kept on the model alone

    async def test_a_replayed_request_is_answered_with_the_version_as_it_is_now(self) -> None:
        repo = await card_with("1.0.0")
        approval = command_event(messages.SET_APPROVAL, CARD | {"version": "1.0.0", "status": "approved"})
        [first] = await run(repo, approval, principal=FRAUD_APPROVER)
        await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")
        [again] = await run(repo, approval, principal=FRAUD_APPROVER)
        assert again.replayed and again.event.id == first.event.id
        shown = version_of(again)
        assert (shown.approval.status, shown.aliases) == ("approved", ["champion"])


class TestModelMetadata:
    async def test_the_model_keeps_what_its_team_gave_it_and_versions_do_not_overwrite_it(self) -> None:
        repo = await card_with("1.0.0", description="v1 text")
        owners = [{"name": "Alice", "email": "alice@example.com", "role": "owner"}]
        updated = await one(
            repo,
            messages.UPDATE_MODEL,
            description="Scores card payments",
            owners=owners,
            tags={"domain": "payments"},
            links={"repository": "https://git.example.com/fraud/card"},
        )
        assert updated.event.type == messages.MODEL_UPDATED and updated.event.data["changes"]["owners"] == owners
        await run(repo, register_event("fraud", "card", "2.0.0", description="v2 text", tags={"x": "y"}))
        found = model(repo)
        assert (found["description"], found["tags"], found["owners"]) == (
            "Scores card payments",
            {"domain": "payments"},
            owners,
        )
        assert found["links"] == {"repository": "https://git.example.com/fraud/card"}

    async def test_an_update_with_nothing_in_it_is_invalid(self) -> None:
        repo = await card_with("1.0.0")
        assert reason(await one(repo, messages.UPDATE_MODEL)) == "invalid"

    async def test_links_must_be_http(self) -> None:
        repo = await card_with("1.0.0")
        assert reason(await one(repo, messages.UPDATE_MODEL, links={"x": "javascript:alert(1)"})) == "invalid"

    async def test_an_unknown_model_is_not_found(self) -> None:
        assert reason(await one(InMemoryRepository(), messages.UPDATE_MODEL, description="x")) == "not_found"


class TestLifecycle:
    async def test_an_aliased_version_cannot_be_archived(self) -> None:
        repo = await card_with("1.0.0")
        await one(repo, messages.SET_ALIAS, alias="champion", version="1.0.0")
        assert reason(await one(repo, messages.SET_VERSION_LIFECYCLE, version="1.0.0", state="archived")) == "conflict"


class TestDelete:
    async def test_a_deleted_version_is_gone_and_its_number_is_never_reused(self) -> None:
        repo = await card_with("1.0.0", "2.0.0")
        deleted = await one(repo, messages.DELETE_VERSION, version="2.0.0")
        assert deleted.event.type == messages.MODEL_VERSION_DELETED
        assert [(v["version"], v.get("deleted", False)) for v in repo.versions.values()] == [
            ("1.0.0", False),
            ("2.0.0", True),  # its tombstone, in its place: the number stays taken
        ]
        [again] = await run(repo, register_event("fraud", "card", "2.0.0+rebuilt"))
        assert reason(again) == "duplicate_version" and "deleted" in again.event.data["message"]
        assert reason(await one(repo, messages.DELETE_VERSION, version="2.0.0")) == "not_found"

    async def test_a_version_deployed_somewhere_or_aliased_is_not_deleted(self) -> None:
        repo = await card_with("1.0.0", "2.0.0")
        [v1] = [v for v in repo.versions.values() if v["version"] == "1.0.0"]
        await repo.deployments.record([StatusSeen(v1["_id"], "prod", "deployed", 7)])
        await one(repo, messages.SET_ALIAS, alias="candidate", version="2.0.0")
        deployed = await one(repo, messages.DELETE_VERSION, version="1.0.0")
        aliased = await one(repo, messages.DELETE_VERSION, version="2.0.0")
        assert (reason(deployed), reason(aliased)) == ("conflict", "conflict")
        assert "prod" in deployed.event.data["message"] and "candidate" in aliased.event.data["message"]
        assert len(repo.versions) == 2


class TestLineage:
    async def test_a_version_records_its_source_and_a_readable_parent(self) -> None:
        repo = await card_with("1.0.0")
        source = {
            "run_id": "run-42",
            "run_url": "https://mlflow.example.com/runs/42",
            "code_commit": "0a1b2c3d",
            "datasets": [{"uri": "s3://data/cards/2026-10", "digest": "sha256:" + "a" * 64}],
        }
        parent = {"team": "fraud", "name": "card", "version": "1.0.0"}
        [outcome] = await run(repo, register_event("fraud", "card-tuned", "1.0.0", source=source, parent=parent))
        assert not outcome.rejected, outcome.event.data
        stored = next(v for v in repo.versions.values() if v["name"] == "card-tuned")
        assert stored["source"]["run_id"] == "run-42" and stored["parent"] == parent

    async def test_a_parent_another_team_cannot_read_is_as_unknown_as_a_missing_one(self) -> None:
        repo = await card_with("1.0.0")
        risk = Principal(key_id="rw000001", team="risk", scopes=frozenset({"models:write"}))
        hidden = {"team": "fraud", "name": "card", "version": "1.0.0"}
        missing = {"team": "fraud", "name": "card", "version": "9.0.0"}
        [unreadable] = await run(repo, register_event("risk", "m", parent=hidden), principal=risk)
        [absent] = await run(repo, register_event("risk", "m2", parent=missing), principal=risk)
        assert (reason(unreadable), reason(absent)) == ("not_found", "not_found")
        assert unreadable.event.data["message"].replace("1.0.0", "9.0.0") == absent.event.data["message"]

    async def test_a_version_cannot_be_its_own_parent(self) -> None:
        [outcome] = await run(
            InMemoryRepository(),
            register_event("fraud", "card", parent={"team": "fraud", "name": "card", "version": "1.0.0"}),
        )
        assert reason(outcome) == "invalid"
