"""One contract, two implementations: the in-memory fake must behave like MongoDB."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from registration.handlers import Changes
from registration.repository import ConcurrentWrite, InMemoryRepository, MongoRepository, Repository
from shared.mongo import ensure_indexes
from tests.infra import Infra

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture(params=["memory", pytest.param("mongo", marks=pytest.mark.integration)])
async def repo(request: pytest.FixtureRequest, db_name: str, infra: Infra) -> AsyncIterator[Repository]:
    if request.param == "memory":
        yield InMemoryRepository()
        return
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    await ensure_indexes(client[db_name])
    yield MongoRepository(client, client[db_name])
    await client.drop_database(db_name)
    await client.close()


def model(model_id: str, name: str = "card") -> dict[str, object]:
    return {
        "_id": model_id,
        "team": "fraud",
        "name": name,
        "created_at": NOW,
        "updated_at": NOW,
        "version_count": 1,
        "latest_rank": "1a",
    }


def version(version_id: str, model_id: str, key: str) -> dict[str, object]:
    return {
        "_id": version_id,
        "model_id": model_id,
        "team": "fraud",
        "name": "card",
        "version_key": key,
        "version": key,
        "created_at": NOW,
    }


def outbox(event_id: str, cause: str, position: int) -> dict[str, object]:
    return {"_id": event_id, "causation_id": cause, "position": position, "sent": False, "type": "t", "model_id": None}


class TestRepositoryContract:
    async def test_commit_then_read_back_by_natural_keys(self, repo: Repository) -> None:
        await repo.commit(
            Changes(
                new_models={"m1": model("m1")}, new_versions=[version("v1", "m1", "k1")], outbox=[outbox("e1", "c1", 1)]
            )
        )
        assert (await repo.models_by_ref([("fraud", "card")]))[("fraud", "card")]["_id"] == "m1"
        assert (await repo.versions_by_key([("m1", "k1"), ("m1", "zz")])).keys() == {("m1", "k1")}
        assert (await repo.outcomes_of(["c1", "c2"])).keys() == {"c1"}

    async def test_a_second_version_with_the_same_key_is_refused(self, repo: Repository) -> None:
        await repo.commit(
            Changes(
                new_models={"m1": model("m1")}, new_versions=[version("v1", "m1", "k1")], outbox=[outbox("e1", "c1", 1)]
            )
        )
        with pytest.raises(ConcurrentWrite):
            await repo.commit(Changes(new_versions=[version("v2", "m1", "k1")], outbox=[outbox("e2", "c2", 2)]))
        assert (await repo.outcomes_of(["c2"])) == {}  # nothing of the refused batch was written

    async def test_a_second_outcome_for_the_same_command_is_refused(self, repo: Repository) -> None:
        await repo.commit(Changes(outbox=[outbox("e1", "c1", 1)]))
        with pytest.raises(ConcurrentWrite):
            await repo.commit(Changes(outbox=[outbox("e2", "c1", 2)]))

    async def test_headline_fields_only_move_forward(self, repo: Repository) -> None:
        await repo.commit(Changes(new_models={"m1": model("m1")}, outbox=[outbox("e1", "c1", 1)]))
        await repo.commit(
            Changes(model_sets={"m1": {"latest_rank": "0z", "latest_version": "old"}}, outbox=[outbox("e2", "c2", 2)])
        )
        await repo.commit(
            Changes(
                model_sets={"m1": {"latest_rank": "1b", "latest_version": "new"}},
                model_version_increments={"m1": 2},
                outbox=[outbox("e3", "c3", 3)],
            )
        )
        stored = (await repo.models_by_ref([("fraud", "card")]))[("fraud", "card")]
        assert (stored["latest_version"], stored["version_count"]) == ("new", 3)

    async def test_unsent_rows_come_oldest_first_until_marked(self, repo: Repository) -> None:
        await repo.commit(Changes(outbox=[outbox("e2", "c2", 2), outbox("e1", "c1", 1), outbox("e3", "c3", 3)]))
        assert [row["_id"] for row in await repo.unsent(2)] == ["e1", "e2"]
        await repo.mark_sent(["e1", "e2"])
        assert [row["_id"] for row in await repo.unsent(10)] == ["e3"]
