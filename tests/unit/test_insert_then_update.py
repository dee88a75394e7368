"""Writers that insert first and update what is already stored: any other failure of the insert is raised.

The query's persisted read model and the tracker's table of versions take a duplicate key as "update
it instead"; a write-concern error (the write may not be durable) or any other write error must
fail the flush or the batch, to be tried again, not pass as written.
"""

from typing import Any

import pytest
from pymongo.errors import BulkWriteError

from deploy_tracker.known_versions import Fact, KnownVersions
from query.projection.storage import PROJECTION_VERSIONS, Checkpoint, MongoProjectionStore, Rows

pytestmark = pytest.mark.unit

DUPLICATE = {"index": 0, "code": 11000, "errmsg": "duplicate key"}
CONCERN = {"code": 64, "errmsg": "waiting for replication timed out"}


class _Collection:
    """A collection whose inserts fail with ``details``; updates are recorded."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.details, self.updates = details, list[Any]()

    async def insert_many(self, docs: list[Any], ordered: bool = True) -> None:
        raise BulkWriteError(self.details)

    async def bulk_write(self, ops: list[Any], ordered: bool = True) -> None:
        self.updates += ops

    async def replace_one(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Database(dict[str, _Collection]):
    def __init__(self, details: dict[str, Any]) -> None:
        super().__init__()
        self.details = details

    def __missing__(self, name: str) -> _Collection:
        self[name] = _Collection(self.details)
        return self[name]


def details(write_errors: list[Any], concern_errors: list[Any]) -> dict[str, Any]:
    return {"writeErrors": write_errors, "writeConcernErrors": concern_errors, "nInserted": 0}


ROWS = Rows({PROJECTION_VERSIONS: [{"_id": "v1", "model_id": "m1"}]})


async def test_the_projection_store_replaces_a_duplicate() -> None:
    db = _Database(details([DUPLICATE], []))
    await MongoProjectionStore(db).write(ROWS, Checkpoint())  # type: ignore[arg-type]
    assert len(db[PROJECTION_VERSIONS].updates) == 1


@pytest.mark.parametrize(
    "failure",
    [details([DUPLICATE], [CONCERN]), details([], [CONCERN]), details([{"index": 0, "code": 2, "errmsg": "bad"}], [])],
)
async def test_the_projection_store_raises_any_other_failure(failure: dict[str, Any]) -> None:
    with pytest.raises(BulkWriteError):
        await MongoProjectionStore(_Database(failure)).write(ROWS, Checkpoint())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "failure",
    [details([DUPLICATE], [CONCERN]), details([], [CONCERN]), details([{"index": 0, "code": 2, "errmsg": "bad"}], [])],
)
async def test_the_trackers_table_raises_any_other_failure(failure: dict[str, Any]) -> None:
    table = KnownVersions(_Database(failure))  # type: ignore[arg-type]
    with pytest.raises(BulkWriteError):
        await table.learn([Fact("v1", {"model_id": "m1", "team": "fraud", "name": "card", "version": "1.0.0"})])
