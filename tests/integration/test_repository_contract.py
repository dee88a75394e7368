"""One contract, two implementations: the in-memory fake must behave like MongoDB."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from registration.changes import Changes, ModelChange
from registration.repository import ConcurrentWrite, InMemoryRepository, MongoRepository, Repository
from registration.storage import MODELS, create_indexes
from tests.infra import Infra

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


class TestRepositoryContract:
    async def test_commit_then_read_back(self, repo: Repository) -> None:
        await repo.commit(
            Changes(
                models={"m1": change(creates=True)},
                new_versions=[version("v1")],
                outbox=[outbox("e1", "c1")],
            )
        )
        assert (await repo.versions_by_id(["v1", "v2"])).keys() == {"v1"}
        assert (await repo.outcomes_of(["fraud/c1", "fraud/c2"])).keys() == {"fraud/c1"}
        model = await stored_model(repo, "m1")
        assert (model["team"], model["name"], model["readers"], model["created_at"]) == (
            "fraud",
            "card",
            ["fraud"],
            NOW,
        )

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
        # Command ids are scoped to the team: in one global namespace a team could pre-empt another's command.
        await repo.commit(Changes(outbox=[outbox("e1", "c1", team="fraud")]))
        await repo.commit(Changes(outbox=[outbox("e2", "c1", team="risk")]))
        assert (await repo.outcomes_of(["fraud/c1", "risk/c1"])).keys() == {"fraud/c1", "risk/c1"}

    async def test_a_change_that_changes_nothing_writes_no_model(self, repo: Repository) -> None:
        await repo.commit(Changes(models={"m1": change()}, outbox=[outbox("e1", "c1")]))
        assert await repo.models_by_id(["m1"]) == {}

    async def test_a_second_creation_keeps_the_first_and_fields_are_set_as_given(self, repo: Repository) -> None:
        await repo.commit(Changes(models={"m1": change(creates=True)}, outbox=[outbox("e1", "c1")]))
        own = {"description": "$not-a-path", "aliases": {"champion": "1.0.0"}}
        await repo.commit(Changes(models={"m1": change(fields=own)}, outbox=[outbox("e2", "c2")]))
        later = NOW + timedelta(seconds=1)
        await repo.commit(Changes(models={"m1": change(later, creates=True)}, outbox=[outbox("e3", "c3")]))
        model = await stored_model(repo, "m1")
        assert (model["created_at"], model["description"], model["aliases"]) == (NOW, "$not-a-path", own["aliases"])

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

    async def test_sharing_and_unsharing_change_the_readers_and_the_owner_stays_one(self, repo: Repository) -> None:
        steps = [
            (change(creates=True), ["fraud"]),
            (change(add_readers={"risk", "ops"}), ["fraud", "ops", "risk"]),
            (change(remove_readers={"risk", "ops", "fraud"}), ["fraud"]),
            (change(add_readers={"risk"}), ["fraud", "risk"]),
        ]
        for number, (step, expected) in enumerate(steps):
            await repo.commit(Changes(models={"m1": step}, outbox=[outbox(f"e{number}", f"c{number}")]))
            readers = cast(list[str], (await stored_model(repo, "m1"))["readers"])
            assert sorted(readers) == expected, number  # $setUnion's order is unspecified


@pytest.mark.integration
async def test_a_write_conflict_with_another_transaction_is_retried_until_it_commits(
    mongo_repo: Repository, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    # The batch's writes go in one bulkWrite, whose driver wraps a failure of the command itself
    # (here another writer's transaction holding the model): its TransientTransactionError label
    # must still reach with_transaction, which retries until the other transaction is over.
    await mongo_repo.commit(Changes(models={"m1": change(creates=True)}, outbox=[outbox("e0", "c0")]))
    async with mongo_database.client.start_session() as other:
        await other.start_transaction()
        await mongo_database[MODELS].update_one({"_id": "m1"}, {"$set": {"description": "theirs"}}, session=other)
        mine = Changes(models={"m1": change(fields={"description": "mine"})}, outbox=[outbox("e1", "c1")])
        committing = asyncio.create_task(mongo_repo.commit(mine))
        await asyncio.sleep(0.5)
        assert not committing.done(), committing.exception()  # retrying, neither failed nor through
        await other.commit_transaction()
    await asyncio.wait_for(committing, 30)
    assert (await stored_model(mongo_repo, "m1"))["description"] == "mine"


class FindsOfModels(monitoring.CommandListener):
    """The read concern of every ``find`` on the models collection."""

    def __init__(self) -> None:
        self.read_concerns: list[object] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == MODELS:
            self.read_concerns.append(event.command.get("readConcern"))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.integration
async def test_models_are_read_majority_committed(infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]) -> None:
    # Registration remembers a model it read as stored (registration.known_models): one a failover
    # later rolled back must never have been read.
    finds = FindsOfModels()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, event_listeners=[finds])
    try:
        repo = MongoRepository(client, client[mongo_database.name], writer="w1")
        await repo.commit(Changes(models={"m1": change(creates=True)}, outbox=[outbox("e1", "c1")]))
        assert set(await repo.models_by_id(["m1"])) == {"m1"}
    finally:
        await client.close()
    assert finds.read_concerns == [{"level": "majority"}]
