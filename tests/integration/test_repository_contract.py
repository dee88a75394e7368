"""One contract, two implementations: the in-memory fake must behave like MongoDB."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from registration.changes import Changes, ModelChange
from registration.repository import ConcurrentWrite, InMemoryRepository, MongoRepository, Repository
from registration.storage import create_indexes
from shared.contract.sortkeys import time_key

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture(
    params=[pytest.param("memory", marks=pytest.mark.unit), pytest.param("mongo", marks=pytest.mark.integration)]
)
def repo(request: pytest.FixtureRequest) -> Repository:
    """Each implementation in turn; only the MongoDB one starts infrastructure."""
    found: Repository = request.getfixturevalue(f"{request.param}_repo")
    return found


@pytest.fixture
def memory_repo() -> Repository:
    return InMemoryRepository(writer="w1")


@pytest.fixture
async def mongo_repo(mongo_database: AsyncDatabase[dict[str, Any]]) -> Repository:
    db = mongo_database
    await create_indexes(db)
    return MongoRepository(db.client, db, writer="w1")


async def stored_model(repo: Repository, model_id: str) -> dict[str, object]:
    if isinstance(repo, InMemoryRepository):
        return repo.models[model_id]
    assert isinstance(repo, MongoRepository)
    found = await repo._models.find_one({"_id": model_id})
    assert found is not None
    return found


def version(version_id: str, model_id: str = "m1") -> dict[str, object]:
    return {
        "_id": version_id,
        "model_id": model_id,
        "team": "fraud",
        "name": "card",
        "version_key": version_id,
        "version": version_id,
        "created_at": NOW,
    }


def outbox(event_id: str, cause: str, *, team: str = "fraud") -> dict[str, object]:
    """An outcome row of command ``cause`` sent by ``team`` (its key is scoped to the team)."""
    return {"_id": event_id, "causation_id": cause, "command_key": f"{team}/{cause}", "type": "t", "data": {}}


def change(at: datetime = NOW, **fields: object) -> ModelChange:
    return ModelChange("m1", "fraud", "card", at, **fields)  # type: ignore[arg-type]


def headline(rank: str, version: str, **extra: object) -> dict[str, object]:
    return {
        "latest_rank": rank,
        "latest_version": version,
        "framework": "onnx",
        "deployment_targets": [],
        "description": "",
        "tags": {},
        "tag_pairs": [],
        **extra,
    }


class TestRepositoryContract:
    async def test_commit_then_read_back(self, repo: Repository) -> None:
        await repo.commit(
            Changes(
                models={"m1": change(added_versions=1, headline=headline("1a", "1.0.0"))},
                new_versions=[version("v1")],
                outbox=[outbox("e1", "c1")],
            )
        )
        assert (await repo.versions_by_id(["v1", "v2"])).keys() == {"v1"}
        assert (await repo.outcomes_of(["fraud/c1", "fraud/c2"])).keys() == {"fraud/c1"}
        model = await stored_model(repo, "m1")
        assert (model["team"], model["version_count"], model["latest_version"]) == ("fraud", 1, "1.0.0")
        assert model["created_at"] == NOW and model["created_key"]

    async def test_a_second_version_with_the_same_id_refuses_the_whole_batch(self, repo: Repository) -> None:
        await repo.commit(Changes(new_versions=[version("v1")], outbox=[outbox("e1", "c1")]))
        with pytest.raises(ConcurrentWrite):
            await repo.commit(Changes(new_versions=[version("v2"), version("v1")], outbox=[outbox("e2", "c2")]))
        assert await repo.outcomes_of(["fraud/c2"]) == {} and await repo.versions_by_id(["v2"]) == {}

    async def test_a_second_outcome_for_the_same_command_is_refused(self, repo: Repository) -> None:
        await repo.commit(Changes(outbox=[outbox("e1", "c1")]))
        with pytest.raises(ConcurrentWrite):
            await repo.commit(Changes(outbox=[outbox("e2", "c1")]))

    async def test_the_same_id_from_another_team_is_another_command(self, repo: Repository) -> None:
        # Found: ids were one global namespace, so one team could pre-empt another's command.
        await repo.commit(Changes(outbox=[outbox("e1", "c1", team="fraud")]))
        await repo.commit(Changes(outbox=[outbox("e2", "c1", team="risk")]))
        assert (await repo.outcomes_of(["fraud/c1", "risk/c1"])).keys() == {"fraud/c1", "risk/c1"}

    async def test_headline_fields_only_move_forward_and_edits_hit_only_the_headline(self, repo: Repository) -> None:
        await repo.commit(
            Changes(
                models={"m1": change(added_versions=1, headline=headline("1b", "2.0.0"))}, outbox=[outbox("e1", "c1")]
            )
        )
        await repo.commit(
            Changes(
                models={"m1": change(added_versions=1, headline=headline("1a", "1.0.0"))}, outbox=[outbox("e2", "c2")]
            )
        )
        await repo.commit(
            Changes(
                models={
                    "m1": change(edits=[("1.0.0", {"description": "old"}), ("2.0.0", {"description": "$not-a-path"})])
                },
                outbox=[outbox("e3", "c3")],
            )
        )
        model = await stored_model(repo, "m1")
        assert (model["latest_version"], model["version_count"], model["description"]) == ("2.0.0", 2, "$not-a-path")

    async def test_metadata_the_model_owns_is_not_overwritten_by_a_newer_version(self, repo: Repository) -> None:
        await repo.commit(
            Changes(
                models={"m1": change(added_versions=1, headline=headline("1a", "1.0.0", description="from v1"))},
                outbox=[outbox("e1", "c1")],
            )
        )
        own = {"description": "the model's own", "own_metadata": ["description"], "aliases": {"champion": "1.0.0"}}
        await repo.commit(Changes(models={"m1": change(fields=own)}, outbox=[outbox("e2", "c2")]))
        newer = headline("1b", "2.0.0", description="from v2", tags={"a": "b"}, tag_pairs=["a:b"])
        await repo.commit(Changes(models={"m1": change(added_versions=1, headline=newer)}, outbox=[outbox("e3", "c3")]))
        await repo.commit(
            Changes(models={"m1": change(edits=[("2.0.0", {"description": "edited v2"})])}, outbox=[outbox("e4", "c4")])
        )
        model = await stored_model(repo, "m1")
        assert (model["latest_version"], model["description"], model["tags"]) == (
            "2.0.0",
            "the model's own",
            {"a": "b"},
        )
        assert model["aliases"] == {"champion": "1.0.0"}

    async def test_relay_reads_after_the_checkpoint_in_commit_order(self, repo: Repository) -> None:
        await repo.register_writer()
        await repo.commit(Changes(outbox=[outbox("e1", "c1"), outbox("e2", "c2")]))
        await repo.commit(Changes(outbox=[outbox("e3", "c3")]))
        rows = await repo.pending(repo.writer, 2)
        assert [row["_id"] for row in rows] == ["e1", "e2"]
        await repo.advance(repo.writer, rows[-1]["seq"])
        assert [row["_id"] for row in await repo.pending(repo.writer, 10)] == ["e3"]
        await repo.advance(repo.writer, 0)  # a heartbeat never moves the checkpoint back
        assert [row["_id"] for row in await repo.pending(repo.writer, 10)] == ["e3"]

    async def test_a_failed_commit_leaves_no_gap_for_the_relay(self, repo: Repository) -> None:
        await repo.commit(Changes(outbox=[outbox("e1", "c1")]))
        with pytest.raises(ConcurrentWrite):
            await repo.commit(Changes(outbox=[outbox("e2", "c2"), outbox("e3", "c1")]))
        await repo.commit(Changes(outbox=[outbox("e4", "c4")]))
        assert [row["seq"] for row in await repo.pending(repo.writer, 10)] == [1, 2]

    async def test_idle_writers_are_reported_until_forgotten(self, repo: Repository) -> None:
        await repo.register_writer()
        await repo.advance("gone", 5)
        assert await repo.stale_writers(timedelta(seconds=-1)) == ["gone"]
        await repo.forget_writer("gone")
        assert await repo.stale_writers(timedelta(seconds=-1)) == []

    async def test_every_change_moves_the_model_to_the_end_of_the_document_feed(self, repo: Repository) -> None:
        await repo.commit(Changes(models={"m1": change(added_versions=1)}, outbox=[outbox("e1", "c1")]))
        first = (await stored_model(repo, "m1"))["feed_key"]
        later = NOW + timedelta(seconds=1)
        await repo.commit(Changes(models={"m1": change(later)}, outbox=[outbox("e2", "c2")]))
        moved = (await stored_model(repo, "m1"))["feed_key"]
        assert (first, moved) == (time_key(NOW, "m1"), time_key(later, "m1"))

    async def test_an_unshared_team_is_a_former_reader_until_shared_again(self, repo: Repository) -> None:
        def readers(model: dict[str, object]) -> tuple[list[object], list[object]]:
            return sorted(model["readers"]), sorted(model["former_readers"])  # type: ignore[call-overload]

        steps = [
            (change(added_versions=1), (["fraud"], [])),
            (change(add_readers={"risk", "ops"}), (["fraud", "ops", "risk"], [])),
            (change(remove_readers={"risk", "ops"}), (["fraud"], ["ops", "risk"])),
            (change(add_readers={"risk"}), (["fraud", "risk"], ["ops"])),
        ]
        for number, (step, expected) in enumerate(steps):
            await repo.commit(Changes(models={"m1": step}, outbox=[outbox(f"e{number}", f"c{number}")]))
            assert readers(await stored_model(repo, "m1")) == expected, number

    async def test_a_former_readers_tombstone_stays_where_the_model_was_unshared(self, repo: Repository) -> None:
        later = NOW + timedelta(minutes=5)
        steps = [
            (change(added_versions=1, add_readers={"risk", "ops"}), {}),
            (change(remove_readers={"risk"}), {"risk": time_key(NOW, "m1")}),
            (change(at=later, remove_readers={"ops"}), {"risk": time_key(NOW, "m1"), "ops": time_key(later, "m1")}),
            (
                change(at=later + timedelta(minutes=1), added_versions=1),
                {"risk": time_key(NOW, "m1"), "ops": time_key(later, "m1")},
            ),
            (change(at=later, add_readers={"risk"}), {"ops": time_key(later, "m1")}),
        ]
        for number, (step, expected) in enumerate(steps):
            await repo.commit(Changes(models={"m1": step}, outbox=[outbox(f"e{number}", f"c{number}")]))
            assert ((await stored_model(repo, "m1")).get("unshared_at") or {}) == expected, number


@pytest.mark.integration
async def test_models_stored_before_the_feed_get_their_place_in_it(mongo_repo: Repository) -> None:
    assert isinstance(mongo_repo, MongoRepository)
    await mongo_repo._models.insert_one({"_id": "old", "updated_key": time_key(NOW, "old"), "readers": ["fraud"]})
    await mongo_repo.commit(Changes(models={"m1": change(added_versions=1)}, outbox=[outbox("e1", "c1")]))
    await mongo_repo.backfill_feed_keys()
    await mongo_repo.backfill_feed_keys()  # idempotent
    old, new = await stored_model(mongo_repo, "old"), await stored_model(mongo_repo, "m1")
    assert (old["feed_key"], old["former_readers"]) == (time_key(NOW, "old"), [])
    assert new["feed_key"] == time_key(NOW, "m1")


@pytest.mark.integration
async def test_models_unshared_before_unshared_at_keep_their_tombstone_at_their_feed_key(
    mongo_repo: Repository,
) -> None:
    assert isinstance(mongo_repo, MongoRepository)
    key = time_key(NOW, "old")
    await mongo_repo._models.insert_one(
        {"_id": "old", "feed_key": key, "readers": ["fraud"], "former_readers": ["risk"]}
    )
    await mongo_repo.backfill_feed_keys()
    await mongo_repo.backfill_feed_keys()  # idempotent
    assert (await stored_model(mongo_repo, "old"))["unshared_at"] == {"risk": key}
