from collections.abc import Sequence

import pytest

from registration.changes import Changes
from registration.handlers import Command, Outcome, handle_commands
from registration.known_models import KnownModels
from registration.repository import InMemoryRepository
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from tests.factories import PRODUCER, command_event, register_event

pytestmark = pytest.mark.unit
SCHEMES = ["s3"]


class Recording(InMemoryRepository):
    """The fake, keeping what each commit wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[Changes] = []

    async def commit(self, changes: Changes) -> None:
        self.commits.append(changes)
        await super().commit(changes)


async def run(repo: InMemoryRepository, *events: CloudEvent) -> list[Outcome]:
    return await handle_commands([Command(e, PRODUCER) for e in events], repo=repo, artifact_schemes=SCHEMES)


class TestRegister:
    async def test_first_version_creates_the_model_and_one_outcome_event(self) -> None:
        repo = InMemoryRepository()
        command = register_event("fraud", "card")
        [outcome] = await run(repo, command)
        assert outcome.event.type == messages.MODEL_VERSION_REGISTERED
        assert outcome.event.causation_id == command.id
        assert outcome.event.correlation_id == command.correlation_id
        [model] = repo.models.values()
        assert (model["team"], model["name"], model["readers"]) == ("fraud", "card", ["fraud"])
        assert [row["causation_id"] for row in repo.outbox.values()] == [command.id]

    async def test_later_versions_keep_the_model_id(self) -> None:
        repo = InMemoryRepository()
        [first] = await run(repo, register_event("fraud", "card", "1.0.0"))
        [second] = await run(repo, register_event("fraud", "card", "1.1.0"))
        assert first.event.data["model_id"] == second.event.data["model_id"]
        assert len(repo.models) == 1

    async def test_same_precedence_with_other_build_metadata_is_a_duplicate(self) -> None:
        repo = InMemoryRepository()
        await run(repo, register_event("fraud", "card", "1.0.0+build.1"))
        [outcome] = await run(repo, register_event("fraud", "card", "1.0.0+build.2"))
        assert outcome.rejected and outcome.event.data["reason"] == "duplicate_version"
        assert len(repo.versions) == 1

    async def test_duplicates_inside_one_batch_are_caught(self) -> None:
        repo = InMemoryRepository()
        outcomes = await run(repo, register_event("fraud", "card", "2.0.0"), register_event("fraud", "card", "2.0.0"))
        assert [o.rejected for o in outcomes] == [False, True]

    async def test_a_redelivered_command_changes_nothing_and_emits_nothing(self) -> None:
        repo = InMemoryRepository()
        command = register_event("fraud", "card")
        [first] = await run(repo, command)
        [again] = await run(repo, command)
        assert again.replayed and again.event.id == first.event.id
        assert len(repo.outbox) == 1 and len(repo.versions) == 1

    async def test_invalid_data_is_rejected_with_field_errors(self) -> None:
        repo = InMemoryRepository()
        [outcome] = await run(repo, register_event("fraud", "card", "1.0", framework="caffe"))
        assert outcome.event.data["reason"] == "invalid"
        assert {tuple(e["loc"]) for e in outcome.event.data["errors"]} == {("data", "version"), ("data", "framework")}
        assert not repo.models

    async def test_bad_artifact_uri_is_rejected(self) -> None:
        repo = InMemoryRepository()
        [outcome] = await run(repo, register_event("fraud", "card", artifact_uri="s3://bucket"))
        assert outcome.event.data["reason"] == "invalid"

    async def test_a_version_of_an_existing_model_writes_only_itself_and_its_outcome(self) -> None:
        repo = Recording()
        await run(repo, register_event("fraud", "card", "1.0.0"))
        await run(repo, register_event("fraud", "card", "1.1.0"), register_event("fraud", "card", "2.0.0-rc.1"))
        created, later = repo.commits
        assert [change.writes() for change in created.models.values()] == [True]
        assert not any(change.writes() for change in later.models.values())
        assert (len(later.new_versions), len(later.outbox), later.version_sets) == (2, 2, {})

    async def test_a_reserved_team_name_is_rejected(self) -> None:
        [outcome] = await run(InMemoryRepository(), register_event("id", "card"))
        assert outcome.event.data["reason"] == "invalid"

    async def test_unknown_command_types_are_rejected(self) -> None:
        repo = InMemoryRepository()
        [outcome] = await run(repo, command_event("registry.command.launch_rocket", {}))
        assert outcome.event.data["reason"] == "invalid"


ALIAS = {"team": "fraud", "name": "card", "alias": "champion", "version": "1.0.0"}


class CountingModelReads(Recording):
    """The fake, counting the models each batch read."""

    def __init__(self) -> None:
        super().__init__()
        self.models_read: list[list[str]] = []
        self.fail_commits = 0

    async def models_by_id(self, model_ids: Sequence[str]) -> dict[str, Document]:
        if model_ids:
            self.models_read.append(list(model_ids))
        return await super().models_by_id(model_ids)

    async def commit(self, changes: Changes) -> None:
        if self.fail_commits:
            self.fail_commits -= 1
            raise ConnectionError("the database went away")
        await super().commit(changes)


class TestModelReads:
    """A registration reads its model only when this process does not know it is stored."""

    async def test_versions_of_a_model_this_process_created_read_nothing_of_it(self) -> None:
        repo = CountingModelReads()
        await run(repo, register_event("fraud", "card", "1.0.0"))
        await run(repo, register_event("fraud", "card", "1.1.0"), register_event("fraud", "card", "1.2.0"))
        model_id = repo.commits[0].outbox[0]["model_id"]
        assert repo.models_read == [[model_id]]  # the first registration's, which created it
        assert [change.writes() for change in repo.commits[1].models.values()] == []
        assert len(repo.models) == 1 and len(repo.versions) == 3

    async def test_a_model_another_process_created_is_read_once_and_not_created_again(self) -> None:
        repo = CountingModelReads()
        await run(repo, register_event("fraud", "card", "1.0.0"))
        repo.known_models = KnownModels()  # a restart, or another replica
        created_at = next(iter(repo.models.values()))["created_at"]
        await run(repo, register_event("fraud", "card", "1.1.0"))
        await run(repo, register_event("fraud", "card", "1.2.0"))
        assert len(repo.models_read) == 2
        assert not any(change.writes() for commit in repo.commits[1:] for change in commit.models.values())
        assert next(iter(repo.models.values()))["created_at"] == created_at

    async def test_a_model_whose_commit_failed_is_not_taken_as_stored(self) -> None:
        repo = CountingModelReads()
        repo.fail_commits = 1
        with pytest.raises(ConnectionError):
            await run(repo, register_event("fraud", "card", "1.0.0"))
        [outcome] = await run(repo, register_event("fraud", "card", "1.0.0"))
        assert outcome.event.type == messages.MODEL_VERSION_REGISTERED
        [model] = repo.models.values()
        assert model["name"] == "card" and len(repo.models_read) == 2

    async def test_other_commands_still_read_a_known_model(self) -> None:
        repo = CountingModelReads()
        await run(repo, register_event("fraud", "card", "1.0.0"))
        [outcome] = await run(repo, command_event(messages.SET_ALIAS, ALIAS))
        assert outcome.event.type == messages.ALIAS_SET
        assert len(repo.models_read) == 2

    async def test_a_batch_re_run_after_a_conflict_reads_a_known_model(self) -> None:
        repo = CountingModelReads()
        await run(repo, register_event("fraud", "card", "1.0.0"))
        [again] = await run(repo, register_event("fraud", "card", "1.0.0"))  # a duplicate: found at commit
        assert again.event.data["reason"] == "duplicate_version"
        assert len(repo.models_read) == 2

    async def test_a_refused_command_reads_nothing_of_what_it_names(self) -> None:
        # Read for a stranger, a model's existence would show in how long the refusal took.
        repo = CountingModelReads()
        stranger = Principal(key_id="riskkey1", team="risk", scopes=frozenset({"models:write"}))
        commands = [register_event("fraud", "card", "1.0.0"), command_event(messages.SET_ALIAS, ALIAS)]
        outcomes = await handle_commands([Command(c, stranger) for c in commands], repo=repo, artifact_schemes=SCHEMES)
        assert [o.event.data["reason"] for o in outcomes] == ["forbidden", "forbidden"]
        assert repo.models_read == []

    def test_the_set_of_known_models_is_bounded(self) -> None:
        known = KnownModels(kept=2)
        known.add(["a", "b", "c"])
        assert "c" in known and "a" not in known and "b" not in known


class TestUpdateAndLifecycle:
    async def test_update_changes_only_description_tags_and_metrics(self) -> None:
        repo = InMemoryRepository()
        await run(repo, register_event("fraud", "card", tags={"a": "1"}))
        data = {"team": "fraud", "name": "card", "version": "1.0.0", "tags": {"b": "2"}, "metrics": {"auc": 0.9}}
        [outcome] = await run(repo, command_event(messages.UPDATE_MODEL_VERSION, data))
        assert outcome.event.type == messages.MODEL_VERSION_UPDATED
        [version] = repo.versions.values()
        assert version["tags"] == {"b": "2"} and version["metrics"] == {"auc": 0.9}
        assert version["tag_pairs"] == ["b:2"]

    async def test_update_refuses_other_fields(self) -> None:
        repo = InMemoryRepository()
        await run(repo, register_event("fraud", "card"))
        data = {"team": "fraud", "name": "card", "version": "1.0.0", "artifact_uri": "s3://x/y"}
        [outcome] = await run(repo, command_event(messages.UPDATE_MODEL_VERSION, data))
        assert outcome.event.data["reason"] == "invalid"

    async def test_update_of_a_missing_version_is_not_found(self) -> None:
        repo = InMemoryRepository()
        data = {"team": "fraud", "name": "card", "version": "9.9.9", "description": "x"}
        [outcome] = await run(repo, command_event(messages.UPDATE_MODEL_VERSION, data))
        assert outcome.event.data["reason"] == "not_found"

    async def test_lifecycle_moves_follow_the_rules(self) -> None:
        repo = InMemoryRepository()
        await run(repo, register_event("fraud", "card"))
        ref = {"team": "fraud", "name": "card", "version": "1.0.0"}
        outcomes = await run(
            repo,
            command_event(messages.SET_VERSION_LIFECYCLE, {**ref, "state": "archived"}),
            command_event(messages.SET_VERSION_LIFECYCLE, {**ref, "state": "active"}),
        )
        assert outcomes[0].event.data["to"] == "archived"
        assert outcomes[1].event.data["reason"] == "conflict"


class TestIdsAreScopedToTheSender:
    """A command id is the sender's team's, and checked only after authorization."""

    FRAUD = Principal(key_id="fraudkey", team="fraud", scopes=frozenset({"models:write"}))
    RISK = Principal(key_id="riskkey1", team="risk", scopes=frozenset({"models:write"}))

    async def test_another_team_pre_sending_an_id_neither_answers_nor_suppresses_the_command(self) -> None:
        repo = InMemoryRepository()
        mine = register_event("fraud", "card", "1.0.0")
        theirs = command_event(messages.REGISTER_MODEL_VERSION, {**mine.data, "team": "risk"}, event_id=mine.id)
        [pre_empt] = await handle_commands([Command(theirs, self.RISK)], repo=repo, artifact_schemes=SCHEMES)
        [outcome] = await handle_commands([Command(mine, self.FRAUD)], repo=repo, artifact_schemes=SCHEMES)
        assert not pre_empt.replayed and not outcome.replayed
        assert outcome.event.type == messages.MODEL_VERSION_REGISTERED and outcome.event.data["team"] == "fraud"

    async def test_an_anonymous_sender_cannot_pre_empt_an_id_either(self) -> None:
        repo = InMemoryRepository()
        mine = register_event("fraud", "card", "1.0.0")
        [anonymous] = await handle_commands([Command(mine, None)], repo=repo, artifact_schemes=SCHEMES)
        [outcome] = await handle_commands([Command(mine, self.FRAUD)], repo=repo, artifact_schemes=SCHEMES)
        assert anonymous.event.data["reason"] == "unauthenticated"
        assert outcome.event.type == messages.MODEL_VERSION_REGISTERED

    async def test_rejections_are_filed_under_the_sender_not_the_payloads_team(self) -> None:
        # Keyed and labelled with the payload's team, a refused command's rejection would reach that
        # team's stream, webhooks and audit log.
        repo = InMemoryRepository()
        command = register_event("fraud", "card", "1.0.0")
        [anonymous] = await handle_commands([Command(command, None)], repo=repo, artifact_schemes=SCHEMES)
        [forbidden] = await handle_commands(
            [Command(register_event("fraud", "card", "1.0.1"), self.RISK)], repo=repo, artifact_schemes=SCHEMES
        )
        assert (anonymous.event.data["team"], anonymous.event.subject) == (None, "anonymous")
        assert forbidden.event.data["reason"] == "forbidden"
        assert (forbidden.event.data["team"], forbidden.event.data["name"], forbidden.event.subject) == (
            "risk",
            None,
            "risk",
        )


class TestOutcomesAreCountedForTheirOwnSender:
    async def test_a_denial_in_a_batch_where_two_teams_used_one_id_is_recorded_as_the_deniers(self) -> None:
        # Two teams may share a ce_id: matched to senders by it, a forbidden command's access event and
        # rejection counter would go to the other team.
        from registration.metrics import REJECTIONS, observe
        from shared.chassis.access import AccessLog
        from shared.chassis.signing import EventSigner

        alice = Principal(key_id="alicekey", team="alice", scopes=frozenset({"models:write"}))
        mallory = Principal(key_id="mallorky", team="mallory", scopes=frozenset({"models:write"}))
        mine = register_event("alice", "card", "1.0.0")
        theirs = command_event(messages.REGISTER_MODEL_VERSION, dict(mine.data), event_id=mine.id)
        commands = [Command(theirs, mallory), Command(mine, alice)]
        outcomes = await handle_commands(commands, repo=InMemoryRepository(), artifact_schemes=SCHEMES)
        access = AccessLog(None, topic="t", service="registration", signer=EventSigner(b"k" * 32))  # type: ignore[arg-type]
        before = REJECTIONS.labels("mallory", "forbidden")._value.get()
        observe(outcomes, commands, access, topic="registry.commands")
        [denial] = [access._queue.get_nowait() for _ in range(access._queue.qsize())]
        assert denial.data["principal"] == "mallorky" and denial.data["team"] == "mallory"
        assert REJECTIONS.labels("mallory", "forbidden")._value.get() == before + 1


def test_every_command_type_of_the_contract_has_one_use_case() -> None:
    from registration.usecases import USE_CASES

    assert set(USE_CASES) == set(messages.COMMAND_MODELS)
    for command_type, use_case in USE_CASES.items():
        assert use_case.data is messages.COMMAND_MODELS[command_type]
