"""Status/environment list filters against MongoDB: right answers, pages that continue, bounded work."""

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from query.api import reads as reads_module
from query.api.pagination import SortSpec
from query.api.reads import MODEL_SORTS, ModelFilters, Reads
from registration.handlers import Command, handle_commands
from registration.repository import MongoRepository
from shared.chassis.mongo import declared_indexes, ensure_indexes
from shared.contract.ids import version_id
from tests.factories import PRODUCER, register_event

pytestmark = pytest.mark.integration


@pytest.fixture
async def reads(mongo: AsyncMongoClient[dict[str, object]], db_name: str) -> Reads:
    db = mongo[db_name]
    await ensure_indexes(db, declared_indexes())
    commands = [Command(register_event(team, f"m{i}"), PRODUCER) for team in ("a", "b") for i in range(30)]
    await handle_commands(commands, repo=MongoRepository(mongo, db, writer="test"), artifact_schemes=["s3"])
    deployed = [version_id(team, f"m{i}", "1.0.0") for team in ("a", "b") for i in range(30) if i % 3 == 0]
    await db["model_versions"].update_many(
        {"_id": {"$in": deployed}}, {"$set": {"status": "deployed", "environments.prod.status": "deployed"}}
    )
    return Reads(db)


async def test_pages_of_a_deployment_filter_cover_every_match_once_within_what_the_caller_sees(
    reads: Reads, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads_module, "MAX_SCANNED_MODELS", 7)  # pages come back short, cursors continue
    distinct_filters: list[dict[str, Any]] = []
    real_distinct = reads.versions.distinct

    async def spying(key: str, condition: dict[str, Any]) -> list[Any]:
        distinct_filters.append(condition)
        return await real_distinct(key, condition)

    monkeypatch.setattr(reads.versions, "distinct", spying)
    sort = SortSpec.parse("name", MODEL_SORTS)
    names, cursor, requests = [], None, 0
    while True:
        page = await reads.list_models(
            ModelFilters(environment="prod", status="deployed"),
            visible={"readers": "a"},
            sort=sort,
            limit=4,
            cursor=cursor,
        )
        names += [doc["name"] for doc in page.items]
        requests += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(names) == sorted(f"m{i}" for i in range(30) if i % 3 == 0)
    assert len(names) == len(set(names)) and requests > 1
    # Found: the filter ran a distinct over every team's versions; now only over the models examined.
    assert distinct_filters and all(len(f["model_id"]["$in"]) <= 100 for f in distinct_filters)
