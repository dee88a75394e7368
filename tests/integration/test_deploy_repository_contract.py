"""One contract, two implementations: the deploy tracker's in-memory repository must behave like MongoDB."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from deploy_tracker.handlers import Changes, Repository
from deploy_tracker.memory import InMemoryRepository
from deploy_tracker.repository import MongoRepository
from deploy_tracker.storage import INDEXES, ensure_storage
from registry_contract.envelope import CloudEvent
from shared.outbox.rows import outbox_row

NOW = datetime(2026, 11, 26, tzinfo=UTC)  # whole milliseconds: MongoDB keeps no finer time


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
    await ensure_storage(db)
    return MongoRepository(db.client, db, writer="w1")


async def given_version(repo: Repository, version_id: str) -> None:
    doc = {"_id": version_id, "model_id": "m1", "team": "fraud", "name": "card", "version": "1.0.0"}
    if isinstance(repo, InMemoryRepository):
        repo.versions[version_id] = doc
        return
    assert isinstance(repo, MongoRepository)
    await repo._versions.insert_one(doc)


def learned(version_id: str, approval: str) -> dict[str, Any]:
    """A row registration described for a version the tracker did not know."""
    identity = {"model_id": "m1", "team": "fraud", "name": "card", "version": "1.0.0"}
    return {"_id": version_id, **identity, "approval": {"status": approval}, "deleted": False, "environments": {}}


def history(key: str) -> dict[str, Any]:
    return {"_id": key, "report_id": key.split("/")[-1], "outcome": "applied", "version_id": "v1", "position": 1}


def outbox(event_id: str) -> dict[str, Any]:
    event = CloudEvent(id=event_id, source="/t", type="t", time=NOW, data={"team": "fraud"})
    return outbox_row(event, key="fraud/card", team="fraud", model_id="m1")


def prod(status: str) -> dict[str, Any]:
    return {"environments": {"prod": {"status": status, "occurred_at": NOW}}, "status": status}


class TestDeployRepositoryContract:
    async def test_commit_then_read_back(self, repo: Repository) -> None:
        await given_version(repo, "v1")
        await repo.commit(Changes(history=[history("fraud/r1")], version_sets={"v1": prod("deploying")}))
        assert await repo.seen(["fraud/r1", "fraud/r2"]) == {"fraud/r1"}
        assert (await repo.versions_by_id(["v1", "v2"])).keys() == {"v1"}
        version = (await repo.versions_by_id(["v1"]))["v1"]
        assert (version["status"], version["environments"]["prod"]["status"], version["team"]) == (
            "deploying",
            "deploying",
            "fraud",
        )

    async def test_reports_are_seen_by_their_sender_scoped_key(self, repo: Repository) -> None:
        await repo.commit(Changes(history=[history("fraud/r1")]))
        assert await repo.seen(["risk/r1", "~anonymous/r1"]) == set()

    async def test_status_fields_never_create_a_version(self, repo: Repository) -> None:
        await repo.commit(Changes(history=[history("fraud/r1")], version_sets={"v9": prod("deploying")}))
        assert await repo.versions_by_id(["v9"]) == {}

    async def test_a_report_recorded_twice_refuses_the_whole_batch(self, repo: Repository) -> None:
        # Two consumers may handle one redelivered batch at once: the second must write nothing.
        await given_version(repo, "v1")
        await repo.commit(Changes(history=[history("fraud/r1")], outbox=[outbox("e1")]))
        with pytest.raises(OperationFailure):
            await repo.commit(
                Changes(
                    history=[history("fraud/r2"), history("fraud/r1")],
                    version_sets={"v1": prod("deployed")},
                    outbox=[outbox("e2")],
                )
            )
        assert await repo.seen(["fraud/r2"]) == set()
        assert "status" not in (await repo.versions_by_id(["v1"]))["v1"]
        assert [row["_id"] for row in await repo.pending(repo.writer, 10)] == ["e1"]

    async def test_relay_reads_after_the_checkpoint_in_commit_order(self, repo: Repository) -> None:
        await repo.register_writer()
        await repo.commit(Changes(history=[history("fraud/r1")], outbox=[outbox("e1"), outbox("e2")]))
        await repo.commit(Changes(history=[history("fraud/r2")], outbox=[outbox("e3")]))
        rows = await repo.pending(repo.writer, 2)
        assert [(row["_id"], row["seq"], row["writer"]) for row in rows] == [("e1", 1, "w1"), ("e2", 2, "w1")]
        await repo.advance(repo.writer, rows[-1]["seq"])
        assert [row["_id"] for row in await repo.pending(repo.writer, 10)] == ["e3"]
        await repo.advance(repo.writer, 0)  # a heartbeat never moves the checkpoint back
        assert [row["_id"] for row in await repo.pending(repo.writer, 10)] == ["e3"]

    async def test_unsent_counts_rows_after_the_checkpoint_with_the_oldest_time(self, repo: Repository) -> None:
        await repo.register_writer()
        assert await repo.unsent() == (0, None)
        await repo.commit(Changes(history=[history("fraud/r1")], outbox=[outbox("e1"), outbox("e2")]))
        assert await repo.unsent() == (2, NOW)
        await repo.advance(repo.writer, 2)
        assert await repo.unsent() == (0, None)

    async def test_a_parked_row_stays_for_inspection(self, repo: Repository) -> None:
        await repo.commit(Changes(history=[history("fraud/r1")], outbox=[outbox("e1")]))
        await repo.park([("e1", "too large")])
        [row] = await repo.pending(repo.writer, 10)
        assert row["parked_reason"] == "too large"

    async def test_idle_writers_are_reported_until_forgotten(self, repo: Repository) -> None:
        await repo.register_writer()
        await repo.advance("gone", 5)
        assert await repo.stale_writers(timedelta(seconds=-1)) == ["gone"]
        await repo.forget_writer("gone")
        assert await repo.stale_writers(timedelta(seconds=-1)) == []

    async def test_a_learned_version_is_kept_unless_known_and_takes_its_status_in_the_same_commit(
        self, repo: Repository
    ) -> None:
        await given_version(repo, "v1")
        await repo.commit(
            Changes(
                history=[history("fraud/r1")],
                learned=[learned("v1", "approved"), learned("v2", "approved")],
                version_sets={"v2": prod("deploying")},
            )
        )
        found = await repo.versions_by_id(["v1", "v2"])
        assert "approval" not in found["v1"]  # known already: what registration said later changes nothing
        assert (found["v2"]["approval"], found["v2"]["status"], found["v2"]["team"]) == (
            {"status": "approved"},
            "deploying",
            "fraud",
        )

    async def test_a_refused_batch_learns_nothing(self, repo: Repository) -> None:
        await repo.commit(Changes(history=[history("fraud/r1")]))
        with pytest.raises(OperationFailure):
            await repo.commit(Changes(history=[history("fraud/r1")], learned=[learned("v2", "approved")]))
        assert await repo.versions_by_id(["v2"]) == {}

    async def test_a_history_row_filed_under_a_model_carries_its_last_rows_position(self, repo: Repository) -> None:
        row, events = history("fraud/r1"), (outbox("e1"), outbox("e2"))
        await repo.commit(Changes(history=[row], outbox=list(events), filed=[(row, events)]))
        [stored] = [r for r in await repo.pending(repo.writer, 10) if r["_id"] == "e2"]
        assert row["revision"] == stored["position"]


class TestMongoRepositoryOnly:
    """What only the MongoDB repository does: its collections, and the event log it serves."""

    pytestmark = pytest.mark.integration

    async def test_a_commit_writes_nothing_outside_the_trackers_collections(
        self, mongo_repo: Repository, mongo_database: AsyncDatabase[dict[str, Any]]
    ) -> None:
        await given_version(mongo_repo, "v1")
        row, events = history("fraud/r1"), (outbox("e1"),)
        await mongo_repo.commit(
            Changes(
                history=[row],
                learned=[learned("v2", "pending")],
                version_sets={"v1": prod("deploying")},
                outbox=list(events),
                filed=[(row, events)],
            )
        )
        assert set(await mongo_database.list_collection_names()) <= set(INDEXES)
        assert not {"models", "model_versions", "outbox"} & set(await mongo_database.list_collection_names())

    async def test_the_event_log_is_in_position_order_after_a_position_without_parked_rows(
        self, mongo_repo: Repository
    ) -> None:
        assert isinstance(mongo_repo, MongoRepository)
        await mongo_repo.commit(Changes(history=[history("fraud/r1")], outbox=[outbox("e1"), outbox("e2")]))
        await mongo_repo.commit(Changes(history=[history("fraud/r2")], outbox=[outbox("e3")]))
        await mongo_repo.park([("e2", "too large")])
        rows = await mongo_repo.events_after(0, 10)
        assert [r["_id"] for r in rows] == ["e1", "e3"]
        assert [r["_id"] for r in await mongo_repo.events_after(rows[0]["position"], 10)] == ["e3"]
        assert [r["_id"] for r in await mongo_repo.events_after(0, 1)] == ["e1"]
