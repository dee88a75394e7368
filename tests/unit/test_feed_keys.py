"""What places a model in the document feed: registration's changes and the tracker's status changes."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy_tracker.handlers import handle_reports
from deploy_tracker.memory import InMemoryRepository as TrackerRepository
from deploy_tracker.reports import Report
from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from shared.contract import messages
from shared.contract.auth import Principal
from shared.contract.envelope import CloudEvent
from shared.contract.ids import model_id, version_id
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


def tracker() -> TrackerRepository:
    repo = TrackerRepository()
    mid, vid = model_id("fraud", "card"), version_id("fraud", "card", "1.0.0")
    repo.models[mid] = {"_id": mid, "team": "fraud", "name": "card", "feed_key": "2026-01-01T00:00:00.000000 old"}
    repo.versions[vid] = {"_id": vid, "model_id": mid, "team": "fraud", "name": "card", "version": "1.0.0"}
    return repo


def report(status: str, at: datetime) -> Report:
    data: dict[str, Any] = {"team": "fraud", "name": "card", "version": "1.0.0", "environment": "prod"}
    return Report(command_event(messages.DEPLOY_STATUS_REPORTED, data | {"status": status, "occurred_at": at}), FRAUD)


class TestDeployTracker:
    async def test_a_status_change_moves_the_model_to_the_end_of_the_feed(self) -> None:
        repo = tracker()
        await handle_reports([report("deploying", T0)], repo=repo)
        moved = repo.models[model_id("fraud", "card")]["feed_key"]
        assert moved > "2026-01-01T00:00:00.000000 old" and moved.endswith(" " + model_id("fraud", "card"))

    async def test_a_report_that_changes_nothing_leaves_the_model_in_place(self) -> None:
        repo = tracker()
        await handle_reports([report("deployed", T0)], repo=repo)
        placed = repo.models[model_id("fraud", "card")]["feed_key"]
        await handle_reports([report("failed", T0 - timedelta(minutes=1))], repo=repo)  # out of order
        assert repo.models[model_id("fraud", "card")]["feed_key"] == placed
