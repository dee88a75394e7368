"""Version lists from memory: the same pages and cursors as from MongoDB, and never a stale answer."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from query.api.reads import Reads
from query.api.version_cache import VersionCache
from registration.handlers import Command, handle_commands
from registration.repository import MongoRepository
from shared.chassis.mongo import declared_indexes, ensure_indexes
from shared.contract.versioning import parse_range
from tests.factories import PRODUCER, register_event

pytestmark = pytest.mark.integration
VERSIONS = [f"{major}.{minor}.0" for major in range(3) for minor in range(7)] + ["1.2.0-rc.1", "2.0.0-beta"]


async def _register(
    mongo: AsyncMongoClient[dict[str, Any]], db: AsyncDatabase[dict[str, Any]], versions: list[str]
) -> None:
    commands = [Command(register_event("a", "m", version), PRODUCER) for version in versions]
    await handle_commands(commands, repo=MongoRepository(mongo, db, writer="test"), artifact_schemes=["s3"])


@pytest.fixture
async def db(mongo: AsyncMongoClient[dict[str, Any]], db_name: str) -> AsyncDatabase[dict[str, Any]]:
    database = mongo[db_name]
    await ensure_indexes(database, declared_indexes())
    await _register(mongo, database, VERSIONS)
    await database["model_versions"].update_many(
        {"version": {"$in": ["0.3.0", "2.5.0"]}}, {"$set": {"lifecycle": "deprecated"}}
    )
    return database


async def _walk(reads: Reads, model: dict[str, Any], limit: int, **filters: Any) -> list[tuple[list[str], str | None]]:
    pages, cursor = [], None
    while True:
        page = await reads.list_versions(model, limit=limit, cursor=cursor, **filters)
        pages.append(([doc["version"] for doc in page.items], page.next_cursor))
        if (cursor := page.next_cursor) is None:
            return pages


@pytest.mark.parametrize(
    "filters",
    [
        {"version_range": None, "include_prerelease": False},
        {"version_range": None, "include_prerelease": True},
        {"version_range": parse_range(">=1.0.0,<2.0.0"), "include_prerelease": True},
        {"version_range": parse_range(">1.3.0"), "include_prerelease": False, "lifecycle": "active"},
        {"version_range": None, "include_prerelease": False, "lifecycle": "deprecated"},
    ],
)
async def test_pages_from_memory_equal_pages_from_mongodb(
    db: AsyncDatabase[dict[str, Any]], filters: dict[str, Any]
) -> None:
    plain, cached = Reads(db), Reads(db, version_cache=VersionCache(10))
    model = await plain.model("a", "m")
    assert model is not None
    for limit in (1, 4, 50):
        from_mongo = await _walk(plain, model, limit, **filters)
        assert await _walk(cached, model, limit, **filters) == from_mongo
        assert await _walk(cached, model, limit, **filters) == from_mongo  # now from memory
    assert cached.version_cache is not None and len(cached.version_cache) == 1


async def test_a_change_to_the_model_is_seen_at_once(
    mongo: AsyncMongoClient[dict[str, Any]], db: AsyncDatabase[dict[str, Any]]
) -> None:
    reads = Reads(db, version_cache=VersionCache(10))
    before = await reads.model("a", "m")
    assert before is not None
    first = await reads.list_versions(before, version_range=None, include_prerelease=False, limit=1, cursor=None)
    await _register(mongo, db, ["9.0.0"])
    after = await reads.model("a", "m")
    assert after is not None
    latest = await reads.list_versions(after, version_range=None, include_prerelease=False, limit=1, cursor=None)
    assert first.items[0]["version"] == "2.6.0" and latest.items[0]["version"] == "9.0.0"


async def test_latest_from_memory_is_latest_from_mongodb(db: AsyncDatabase[dict[str, Any]]) -> None:
    plain, cached = Reads(db), Reads(db, version_cache=VersionCache(10))
    model = await plain.model("a", "m")
    assert model is not None
    await db["model_versions"].update_one({"version": "2.6.0"}, {"$set": {"lifecycle": "deprecated"}})
    for prerelease in (False, True):
        for deprecated in (False, True):
            options = {"include_prerelease": prerelease, "include_deprecated": deprecated}
            expected = await plain.latest_version(model, **options)
            assert expected is not None
            assert await cached.latest_version(model, **options) == expected
            assert await cached.latest_version(model, **options) == expected  # from memory
    assert cached.version_cache is not None and len(cached.version_cache) == 1
