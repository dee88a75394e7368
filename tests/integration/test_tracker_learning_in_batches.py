"""The tracker's table of versions in MongoDB ends as the in-memory rule says, however facts are batched.

:meth:`KnownVersions.learn` inserts a version's first fact as a new row and applies the rest as
updates; whatever a batch holds (a version registered and approved in one batch, an older
approval after a newer one, an approval before its registration, facts about rows already held),
the rows must be those :func:`apply_fact` makes applying every fact in order.
"""

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.known_versions import Fact, KnownVersions, apply_fact, fact_of
from deploy_tracker.storage import KNOWN_VERSIONS
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.ids import model_id

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 7, 10, tzinfo=UTC)


def fact(kind: str, version: str, revision: int | None, **data: Any) -> Fact:
    ref = {"model_id": model_id("fraud", "card"), "team": "fraud", "name": "card", "version": version}
    made = fact_of(kind, ref | data, T0, revision)
    assert made is not None
    return made


def approved(version: str, revision: int | None, to: str = "approved") -> Fact:
    return fact(messages.VERSION_APPROVAL_CHANGED, version, revision, to=to, by="k-approver", comment=None)


def registered(version: str, revision: int | None, *, signed: bool | None = None) -> Fact:
    provenance = {} if signed is None else {"provenance": {"verified": signed}}
    return fact(messages.MODEL_VERSION_REGISTERED, version, revision, **provenance)


SAME = approved("7.0.0", None)
BATCHES = [
    [registered("1.0.0", 1), registered("2.0.0", 2, signed=True)],
    [
        registered("3.0.0", 3, signed=False),  # new, then approved twice in the same batch, out of order
        approved("3.0.0", 5),
        approved("3.0.0", 4, to="rejected"),
        approved("1.0.0", 6),  # a row held since the first batch
        approved("4.0.0", 8),  # an approval before its registration
        registered("4.0.0", 7, signed=True),
        fact(messages.MODEL_VERSION_DELETED, "2.0.0", 9),
        approved("5.0.0", None),  # no revision: applies in its order
        approved("5.0.0", None, to="rejected"),
    ],
    [registered("1.0.0", 1), approved("3.0.0", 4), registered("6.0.0", None)],  # replays and a late arrival
    [SAME, approved("7.0.0", None, to="rejected"), SAME],  # one fact twice: its second time applies too
]


async def test_every_batch_leaves_the_rows_applying_each_fact_in_order_makes(
    mongo_database: AsyncDatabase[dict[str, Any]],
) -> None:
    table = KnownVersions(mongo_database)
    expected: dict[str, Document] = {}
    for batch in BATCHES:
        assert await table.learn(batch) == len(batch)
        for each in batch:
            apply_fact(expected, each)
        stored = {row["_id"]: row async for row in mongo_database[KNOWN_VERSIONS].find({})}
        assert stored == expected
