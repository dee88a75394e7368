"""The query's persisted read model: a flush of new and already stored documents leaves the newest of each.

:meth:`MongoProjectionStore.write` inserts a flush's documents and replaces those already stored
(the embedded stand-in commits an insert of many at once, an upsert one by one); what it loads
back must be what was written last, whichever way each document went.
"""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from query.projection.storage import (
    PROJECTION_HISTORY,
    PROJECTION_MODELS,
    PROJECTION_VERSIONS,
    Checkpoint,
    MongoProjectionStore,
    Rows,
)

pytestmark = pytest.mark.integration


def version(n: int, description: str) -> dict[str, Any]:
    return {"_id": f"v{n}", "model_id": "m1", "version": f"{n}.0.0", "description": description}


async def test_new_and_stored_documents_end_as_last_written(mongo_database: AsyncDatabase[dict[str, Any]]) -> None:
    store = MongoProjectionStore(mongo_database)
    model = {"_id": "m1", "doc": {"team": "fraud", "name": "card"}, "revisions": {"registration": 1}}
    history = [{"_id": f"m1:e{n}", "model_id": "m1", "seq": n, "row": {"_id": f"e{n}"}} for n in range(3)]
    first = Rows({PROJECTION_MODELS: [model], PROJECTION_VERSIONS: [version(1, "a"), version(2, "b")]})
    await store.write(first, Checkpoint({0: 1}, {"registration": 1}))
    second = Rows(
        {
            PROJECTION_MODELS: [model | {"revisions": {"registration": 2}}],  # stored: replaced
            PROJECTION_VERSIONS: [version(3, "c"), version(2, "b, changed"), version(4, "d")],  # new, stored, new
            PROJECTION_HISTORY: history,  # new
        },
        {PROJECTION_VERSIONS: ["v1"]},
    )
    await store.write(second, Checkpoint({0: 2}, {"registration": 2}))
    await store.write(Rows({PROJECTION_HISTORY: history[1:]}), Checkpoint({0: 3}, {"registration": 2}))  # again

    versions = {doc["_id"]: doc async for doc in mongo_database[PROJECTION_VERSIONS].find({})}
    assert versions == {"v2": version(2, "b, changed"), "v3": version(3, "c"), "v4": version(4, "d")}
    assert await mongo_database[PROJECTION_MODELS].find({}).to_list() == [model | {"revisions": {"registration": 2}}]
    assert await mongo_database[PROJECTION_HISTORY].find({}).sort("seq", 1).to_list() == history
    loaded, checkpoint = await store.load()
    assert sorted(loaded.version_owner) == ["v2", "v3", "v4"]
    assert checkpoint.offsets == {0: 3}
