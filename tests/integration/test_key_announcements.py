"""Keys written to the collection directly are announced once at registration's start, on a real MongoDB."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from registration.key_events import announce, announce_unannounced
from registration.storage import API_KEYS, INDEXES, OUTBOX, RELAY_CHECKPOINTS
from registry_contract.auth import Principal
from registry_contract.identity_events import API_KEY_CREATED, API_KEY_REVOKED
from shared.chassis.keystore import issue_key
from shared.chassis.mongo import ensure_indexes
from shared.outbox.changes import ChangeLog
from shared.outbox.log import MongoOutboxLog

pytestmark = pytest.mark.integration
ADMIN = Principal(key_id="adm00001", team="fraud", scopes=frozenset({"team:admin"}))


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
async def db(mongo_database: AsyncDatabase[dict[str, Any]]) -> AsyncDatabase[dict[str, Any]]:
    await ensure_indexes(mongo_database, INDEXES, [API_KEYS, OUTBOX, RELAY_CHECKPOINTS])
    return mongo_database


def change_log(db: AsyncDatabase[dict[str, Any]], wakes: Wakes) -> ChangeLog:
    log = MongoOutboxLog(db[OUTBOX], db[RELAY_CHECKPOINTS], writer="w1")
    return ChangeLog(log, db.client, wake=wakes)


async def test_a_key_written_directly_is_announced_once_as_late_with_who_wrote_it(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    wakes = Wakes()
    changes = change_log(db, wakes)
    key, _ = await issue_key(
        db[API_KEYS], team="platform", name="bootstrap", scopes=["platform:admin"], created_by="registry up"
    )
    assert await announce_unannounced(changes, db[API_KEYS]) == 1
    assert await announce_unannounced(changes, db[API_KEYS]) == 0  # the next start finds nothing to announce
    [row] = await db[OUTBOX].find().to_list()
    assert (row["type"], row["key"], row["team"], row["model_id"]) == (API_KEY_CREATED, "platform", "platform", None)
    assert (row["data"]["actor"], row["data"]["announced_late"], row["data"]["key_id"]) == (
        "registry up",
        True,
        key.key_id,
    )
    assert key.secret_hash not in repr(row) and key.token not in repr(row)
    assert wakes.count == 1


async def test_a_key_revoked_directly_is_announced_revoked_too(db: AsyncDatabase[dict[str, Any]]) -> None:
    changes = change_log(db, Wakes())
    key, record = await issue_key(db[API_KEYS], team="fraud", name="ci", scopes=["models:read"], created_by="adm00001")
    await announce(changes, db[API_KEYS], record, API_KEY_CREATED, actor=ADMIN)
    await db[API_KEYS].update_one({"_id": key.key_id}, {"$set": {"revoked": True}})
    assert await announce_unannounced(changes, db[API_KEYS]) == 1
    rows = await db[OUTBOX].find().sort("seq", 1).to_list()
    assert [(r["type"], r["data"]["announced_late"], r["data"]["actor"]) for r in rows] == [
        (API_KEY_CREATED, False, "adm00001"),
        (API_KEY_REVOKED, True, None),  # who revoked it outside the API is unknown: no one is named
    ]
    stored = await db[API_KEYS].find_one({"_id": key.key_id})
    assert stored is not None and sorted(stored["announced"]) == ["created", "revoked"]


async def test_a_route_and_a_start_announcing_the_same_key_announce_it_once(db: AsyncDatabase[dict[str, Any]]) -> None:
    changes = change_log(db, Wakes())
    _, record = await issue_key(db[API_KEYS], team="fraud", name="ci", scopes=["models:read"], created_by="adm00001")
    # Another replica's start announced it between the route's store and its announcement.
    assert await announce_unannounced(changes, db[API_KEYS]) == 1
    await announce(changes, db[API_KEYS], record, API_KEY_CREATED, actor=ADMIN)  # no error, nothing more
    assert [row["seq"] for row in await db[OUTBOX].find().to_list()] == [1]
    # The refused commit gave its number back: the writer's next row follows without a gap.
    await announce(changes, db[API_KEYS], record | {"revoked": True}, API_KEY_REVOKED, actor=ADMIN)
    assert sorted(row["seq"] for row in await db[OUTBOX].find().to_list()) == [1, 2]


async def test_many_keys_are_announced_in_chunks_and_a_chunk_another_replica_began_is_finished(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    wakes = Wakes()
    changes = change_log(db, wakes)
    records = [
        (await issue_key(db[API_KEYS], team="fraud", name=f"k{n}", scopes=["models:read"], created_by="tests"))[1]
        for n in range(5)
    ]
    # Another replica announced the fourth key and has not noted it on the key yet.
    await announce(changes, db[API_KEYS], records[3], API_KEY_CREATED, actor=None)
    await db[API_KEYS].update_one({"_id": records[3]["_id"]}, {"$unset": {"announced": 1}})
    assert await announce_unannounced(changes, db[API_KEYS], chunk=2) == 5
    rows = await db[OUTBOX].find().to_list()
    assert sorted(row["data"]["key_id"] for row in rows) == sorted(r["_id"] for r in records)
    assert await announce_unannounced(changes, db[API_KEYS], chunk=2) == 0
    assert wakes.count == 1 + 2 + 1  # the other replica's, two whole chunks, the refused chunk's other key
