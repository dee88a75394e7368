"""Every list query of the read API is served by an index (checked with explain).

Filters are checked one at a time: with several equality filters, the stand-in's executor
serves the query from the first filter's index, but its ``explain`` does not model that
choice and reports COLLSCAN, so combined filters cannot be checked this way against it.
"""

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from query.api.pagination import SortSpec
from query.api.reads import MODEL_SORTS, ModelFilters, Reads
from registration.handlers import Command, handle_commands
from registration.repository import MongoRepository
from shared.chassis.mongo import declared_indexes, ensure_indexes
from shared.contract.versioning import parse_range
from tests.factories import PRODUCER, register_event

pytestmark = pytest.mark.integration


def stages(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "stage" in plan:
            found.add(plan["stage"])
        for value in plan.values():
            found |= stages(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= stages(value)
    return found


@pytest.fixture
async def reads(mongo: AsyncMongoClient[dict[str, object]], db_name: str) -> Reads:
    db = mongo[db_name]
    await ensure_indexes(db, declared_indexes())
    commands = [
        Command(
            register_event("fraud", f"m{i}", f"1.{j}.0", tags={"owner": "a"}, deployment_targets=["sagemaker"]),
            PRODUCER,
        )
        for i in range(5)
        for j in range(3)
    ]
    await handle_commands(commands, repo=MongoRepository(mongo, db, writer="test"), artifact_schemes=["s3"])
    return Reads(db)


MODEL_QUERIES = [
    ModelFilters(),
    ModelFilters(team="fraud"),
    ModelFilters(framework="xgboost"),
    ModelFilters(deployment_target="sagemaker"),
    ModelFilters(tags=("owner:a",)),
    ModelFilters(name_prefix="m1"),
    ModelFilters(created_after=datetime(2020, 1, 1, tzinfo=UTC)),
]


@pytest.mark.parametrize("filters", MODEL_QUERIES, ids=lambda f: repr({k: v for k, v in f.__dict__.items() if v}))
@pytest.mark.parametrize("sort", ["-created_at", "name", "-updated_at"])
async def test_model_lists_use_an_index(reads: Reads, filters: ModelFilters, sort: str) -> None:
    spec = SortSpec.parse(sort, MODEL_SORTS)
    query = reads.model_query(filters, {})
    plan = await reads.models.find(query).sort(spec.mongo_sort()).limit(51).explain()
    assert "COLLSCAN" not in stages(plan["queryPlanner"]), plan["queryPlanner"]


@pytest.mark.parametrize("version_range", [None, ">=1.1.0,<2.0.0"])
async def test_version_lists_and_lookups_use_an_index(reads: Reads, version_range: str | None) -> None:
    model = await reads.model("fraud", "m1")
    assert model is not None
    query: dict[str, Any] = {"model_id": model["_id"], "prerelease": False}
    if version_range:
        query["version_key"] = parse_range(version_range).to_filter()
    for cursor in (
        reads.versions.find(query).sort("version_key", -1).limit(51),
        reads.outbox.find({"model_id": model["_id"]}).sort("position", 1).limit(51),
        reads.models.find({"team": "fraud", "name": "m1"}).limit(1),
    ):
        plan = await cursor.explain()
        assert "COLLSCAN" not in stages(plan["queryPlanner"]), plan["queryPlanner"]
