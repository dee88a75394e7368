"""Registration indexes only what it reads itself; an upgrade drops what the query's lists needed.

Every index is one more entry each write makes on the database server. Since the query answers
lists, feeds, lineage and each model's headline from its projection, registration reads models
and versions by id, and its outbox.
"""

from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from registration.storage import (
    DELETED_VERSIONS,
    MODEL_VERSIONS,
    MODELS,
    SHARES,
    create_indexes,
    move_tombstones,
    retire_model_fields,
)

pytestmark = pytest.mark.integration

# What registration created before the query read from its projection and kept the headline.
EARLIER = {
    MODELS: [
        IndexModel([("team", ASCENDING), ("name", ASCENDING)], unique=True, name="team_name"),
        IndexModel([("created_key", DESCENDING)], name="created"),
        IndexModel([("readers", ASCENDING), ("feed_key", ASCENDING)], name="readers_feed"),
        IndexModel([("tag_pairs", ASCENDING), ("created_key", DESCENDING)], name="tags_created"),
    ],
    MODEL_VERSIONS: [
        IndexModel([("status", ASCENDING), ("model_id", ASCENDING)], name="status_model"),
        IndexModel([("team", ASCENDING), ("created_at", DESCENDING)], name="team_recent"),
        IndexModel(
            [("model_id", ASCENDING), ("prerelease", ASCENDING), ("version_key", DESCENDING)], name="model_stable"
        ),
    ],
    SHARES: [IndexModel([("with_team", ASCENDING)], name="with_team")],
}


async def test_an_upgrade_keeps_only_the_indexes_registration_reads(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    for collection, indexes in EARLIER.items():
        await mongo_database[collection].create_indexes(indexes)
    await mongo_database[MODELS].insert_one({"_id": "fraud/card", "team": "fraud", "name": "card"})

    await create_indexes(mongo_database)
    await create_indexes(mongo_database)  # every start runs it: idempotent

    assert set(await mongo_database[MODELS].index_information()) == {"_id_", "team_name"}
    assert set(await mongo_database[MODEL_VERSIONS].index_information()) == {"_id_"}
    assert set(await mongo_database[SHARES].index_information()) == {"_id_"}
    assert await mongo_database[MODELS].count_documents({}) == 1  # documents untouched


async def test_an_upgrade_removes_the_headline_and_feed_fields_but_keeps_what_the_team_gave_the_model(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    kept = {"team": "fraud", "readers": ["fraud", "risk"], "aliases": {"champion": "1.0.0"}, "owners": [{"name": "a"}]}
    headline = {"latest_version": "1.0.0", "version_count": 3, "feed_key": "k", "former_readers": ["ops"]}
    await mongo_database[MODELS].insert_many(
        [
            {
                "_id": "own",
                **kept,
                **headline,
                "own_metadata": ["description"],
                "description": "ours",
                "tags": {"v": "1"},
            },
            {"_id": "copied", **kept, **headline, "description": "from 1.0.0", "tags": {"v": "1"}},
            {"_id": "current", **kept},
        ]
    )

    assert await retire_model_fields(mongo_database) == 2
    assert await retire_model_fields(mongo_database) == 0  # every start runs it: idempotent

    found = {doc.pop("_id"): doc async for doc in mongo_database[MODELS].find()}
    assert found == {"own": kept | {"description": "ours"}, "copied": kept, "current": kept}


async def test_an_upgrade_moves_the_tombstones_of_deleted_versions_into_their_place(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    tombstone = {"_id": "fraud/card@2.0.0", "model_id": "fraud/card", "version": "2.0.0", "deleted_by": "k1"}
    await mongo_database[DELETED_VERSIONS].insert_one(dict(tombstone))
    await mongo_database[MODEL_VERSIONS].insert_one({"_id": "fraud/card@1.0.0", "version": "1.0.0"})

    assert await move_tombstones(mongo_database) == 1
    assert await move_tombstones(mongo_database) == 0  # every start runs it: idempotent

    found = {doc["_id"]: doc async for doc in mongo_database[MODEL_VERSIONS].find()}
    assert found == {
        "fraud/card@1.0.0": {"_id": "fraud/card@1.0.0", "version": "1.0.0"},
        tombstone["_id"]: tombstone | {"deleted": True},
    }
    assert await mongo_database[DELETED_VERSIONS].count_documents({}) == 0
