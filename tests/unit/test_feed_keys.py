"""What places a model in the document feed: registration's changes (the tracker writes no model: issue 23)."""

from datetime import UTC, datetime

import pytest

from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from shared.contract import messages
from shared.contract.auth import Principal
from shared.contract.envelope import CloudEvent
from shared.contract.ids import model_id
from shared.contract.sortkeys import time_key
from tests.factories import PRODUCER, command_event, register_event

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
FRAUD = Principal(key_id="k-fraud", team="fraud", scopes=frozenset({"deployments:write"}))


async def run(repo: InMemoryRepository, *events: CloudEvent) -> None:
    await handle_commands([Command(e, PRODUCER) for e in events], repo=repo, artifact_schemes=["s3"])


def sharing(kind: str, with_team: str) -> CloudEvent:
    return command_event(kind, {"team": "fraud", "name": "card", "with_team": with_team})


class TestRegistration:
    async def test_every_accepted_command_places_the_model_at_its_time_in_the_feed(self) -> None:
        repo = InMemoryRepository()
        mid = model_id("fraud", "card")
        for event in (register_event("fraud", "card", "1.0.0"), sharing(messages.SHARE_MODEL, "risk")):
            await run(repo, event)
            model = repo.models[mid]
            assert model["feed_key"] == time_key(model["updated_at"], mid)

    async def test_unsharing_leaves_a_former_reader_and_sharing_again_removes_it(self) -> None:
        repo = InMemoryRepository()
        await run(repo, register_event("fraud", "card"))
        await run(repo, sharing(messages.SHARE_MODEL, "risk"))
        mid = model_id("fraud", "card")
        assert (repo.models[mid]["readers"], repo.models[mid]["former_readers"]) == (["fraud", "risk"], [])
        await run(repo, sharing(messages.UNSHARE_MODEL, "risk"))
        assert (repo.models[mid]["readers"], repo.models[mid]["former_readers"]) == (["fraud"], ["risk"])
        await run(repo, sharing(messages.SHARE_MODEL, "risk"))
        assert (repo.models[mid]["readers"], repo.models[mid]["former_readers"]) == (["fraud", "risk"], [])

    async def test_shared_and_unshared_in_one_batch_ends_unshared(self) -> None:
        repo = InMemoryRepository()
        await run(repo, register_event("fraud", "card"))
        await run(repo, sharing(messages.SHARE_MODEL, "risk"), sharing(messages.UNSHARE_MODEL, "risk"))
        model = repo.models[model_id("fraud", "card")]
        assert (model["readers"], model["former_readers"]) == (["fraud"], ["risk"])
