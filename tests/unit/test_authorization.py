import pytest

from registration.handlers import Command, Outcome, handle_commands
from registration.repository import InMemoryRepository
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from tests.factories import PRODUCER, command_event, register_event

pytestmark = pytest.mark.unit

WRITER = Principal("writer01", "fraud", frozenset({"models:write"}))
ADMIN = Principal("admin001", "fraud", frozenset({"team:admin"}))
READER = Principal("reader01", "fraud", frozenset({"models:read"}))
OTHER = Principal("other001", "risk", frozenset({"models:write", "team:admin"}))


async def run(
    repo: InMemoryRepository, principal: Principal | None, *events: CloudEvent, throttled: bool = False
) -> list[Outcome]:
    commands = [Command(e, principal, throttled=throttled) for e in events]
    return await handle_commands(commands, repo=repo, artifact_schemes=["s3"])


class TestCommandAuthorization:
    @pytest.mark.parametrize(
        ("principal", "reason"),
        [(None, "unauthenticated"), (READER, "forbidden"), (OTHER, "forbidden"), (ADMIN, "forbidden")],
    )
    async def test_registering_needs_models_write_for_the_team(self, principal: Principal | None, reason: str) -> None:
        repo = InMemoryRepository()
        [outcome] = await run(repo, principal, register_event("fraud", "card"))
        assert outcome.event.data["reason"] == reason
        assert not repo.versions and not repo.models

    async def test_an_unauthenticated_command_learns_nothing_about_its_data(self) -> None:
        [outcome] = await run(InMemoryRepository(), None, register_event("Bad", "x", "nope"))
        assert outcome.event.data["reason"] == "unauthenticated" and outcome.event.data["errors"] == []

    async def test_a_throttled_key_is_rejected_not_dropped(self) -> None:
        [outcome] = await run(InMemoryRepository(), WRITER, register_event("fraud", "card"), throttled=True)
        assert outcome.event.data["reason"] == "rate_limited"

    async def test_the_teams_writer_may_register(self) -> None:
        [outcome] = await run(InMemoryRepository(), WRITER, register_event("fraud", "card"))
        assert outcome.event.type == messages.MODEL_VERSION_REGISTERED
        assert outcome.version is not None and outcome.version["created_by"] == "writer01"


class TestSharing:
    async def test_share_and_unshare_move_the_readers(self) -> None:
        repo = InMemoryRepository()
        await run(repo, WRITER, register_event("fraud", "card"))
        share = {"team": "fraud", "name": "card", "with_team": "risk"}
        [shared] = await run(repo, ADMIN, command_event(messages.SHARE_MODEL, share))
        assert shared.event.type == messages.MODEL_SHARED
        [model] = repo.models.values()
        assert model["readers"] == ["fraud", "risk"] and len(repo.shares) == 1
        [again] = await run(repo, ADMIN, command_event(messages.SHARE_MODEL, share))
        assert again.event.type == messages.MODEL_SHARED  # a PUT: sharing again changes nothing
        assert repo.models[model["_id"]]["readers"] == ["fraud", "risk"] and len(repo.shares) == 1
        [unshared] = await run(repo, ADMIN, command_event(messages.UNSHARE_MODEL, share))
        assert unshared.event.type == messages.MODEL_UNSHARED
        assert repo.models[model["_id"]]["readers"] == ["fraud"] and not repo.shares

    @pytest.mark.parametrize(
        ("principal", "data", "reason"),
        [
            (WRITER, {"with_team": "risk"}, "forbidden"),
            (OTHER, {"with_team": "ads"}, "forbidden"),
            (ADMIN, {"with_team": "fraud"}, "invalid"),
            (ADMIN, {"with_team": "risk", "name": "missing"}, "not_found"),
        ],
    )
    async def test_sharing_refusals(self, principal: Principal, data: dict[str, str], reason: str) -> None:
        repo = InMemoryRepository()
        await run(repo, PRODUCER, register_event("fraud", "card"))
        [outcome] = await run(
            repo, principal, command_event(messages.SHARE_MODEL, {"team": "fraud", "name": "card", **data})
        )
        assert outcome.event.data["reason"] == reason

    async def test_unsharing_what_is_not_shared_is_not_found(self) -> None:
        repo = InMemoryRepository()
        await run(repo, PRODUCER, register_event("fraud", "card"))
        data = {"team": "fraud", "name": "card", "with_team": "risk"}
        [outcome] = await run(repo, ADMIN, command_event(messages.UNSHARE_MODEL, data))
        assert outcome.event.data["reason"] == "not_found"

    async def test_a_model_is_shared_with_at_most_the_configured_number_of_teams(self) -> None:
        """Each reader team costs every query replica a search index, and any slug names a team."""
        repo = InMemoryRepository()
        await run(repo, PRODUCER, register_event("fraud", "card"))

        async def share(team: str, max_shares: int = 3) -> Outcome:
            data = {"team": "fraud", "name": "card", "with_team": team}
            command = Command(command_event(messages.SHARE_MODEL, data), ADMIN)
            [outcome] = await handle_commands([command], repo=repo, artifact_schemes=["s3"], max_shares=max_shares)
            return outcome

        assert [(await share(f"team-{i}")).rejected for i in range(3)] == [False, False, False]
        refused = await share("team-3")
        assert refused.event.data["reason"] == "conflict"
        assert "REGISTRATION_MAX_SHARES_PER_MODEL" in refused.event.data["message"]
        assert not (await share("team-0")).rejected  # already one of them: no room needed
        [model] = repo.models.values()
        assert model["readers"] == ["fraud", "team-0", "team-1", "team-2"]
        unshare = {"team": "fraud", "name": "card", "with_team": "team-0"}
        await run(repo, ADMIN, command_event(messages.UNSHARE_MODEL, unshare))
        assert not (await share("team-3")).rejected  # room again once one is unshared
