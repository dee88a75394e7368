"""MongoDB machinery every service uses: the client factory, a ping, index creation, chunked lookups.

Collections and their indexes belong to the service that owns them (its ``storage`` module, e.g.
``audit.storage``): each service creates its own at start-up with :func:`ensure_indexes`, and no
other service reads or writes them. TTL indexes named :data:`EXPIRY_INDEX` are brought to the
declared period when they exist with another (``collMod``), and dropped when the owner no longer
declares one (its retention turned off). ``shared`` owns no collection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ClientBulkWriteException, OperationFailure

from registry_contract.documents import Document
from shared.chassis.settings import CommonSettings

DUPLICATE_KEY = 11000  # MongoDB's error code for a write that would repeat a unique key


def is_duplicate_key(exc: OperationFailure) -> bool:
    """Whether ``exc`` (a write's failure, or a bulk write's) refused a repeated unique key."""
    if isinstance(exc, BulkWriteError | ClientBulkWriteException):
        return any(error.get("code") == DUPLICATE_KEY for error in exc.details.get("writeErrors", []))
    return exc.code == DUPLICATE_KEY


EXPIRY_INDEX = "expiry"  # the TTL index of a collection whose documents expire
# The collection of :class:`shared.chassis.keystore.MongoKeyStore`, which registration alone wires
# (API keys are registration's: ``registration.storage`` declares them with its other collections).
API_KEYS = "api_keys"


def make_client(settings: CommonSettings, **options: Any) -> AsyncMongoClient[Document]:
    """Build the async client; connection-string options (e.g. ``retryWrites``) come from the URI."""
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=options.pop("serverSelectionTimeoutMS", 5_000),
        appname=settings.service_name,
        **options,
    )


def pinger(client: AsyncMongoClient[Document], *, timeout: float = 2.0) -> Callable[[], Awaitable[bool]]:
    """An async check that MongoDB answers a ping within ``timeout`` seconds."""

    async def reachable() -> bool:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see shared.outbox.relay
                await client.admin.command("ping")
        except Exception:  # any failure to answer is "not reachable"
            return False
        return True

    return reachable


def database(client: AsyncMongoClient[Document], settings: CommonSettings) -> AsyncDatabase[Document]:
    """The registry's database."""
    return client[settings.mongodb_database]


def expiry_index(field: str, seconds: float) -> list[IndexModel]:
    """The TTL index :data:`EXPIRY_INDEX` deleting documents ``seconds`` after their ``field``; none for 0 (kept)."""
    period = round(seconds)
    return [IndexModel([(field, ASCENDING)], name=EXPIRY_INDEX, expireAfterSeconds=period)] if period else []


async def ensure_indexes(
    db: AsyncDatabase[Document],
    indexes: Mapping[str, Sequence[IndexModel]],
    collections: Sequence[str] | None = None,
    *,
    retired: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Create the ``indexes`` an owner declares for ``collections`` (default: all it declares); idempotent.

    A declared TTL index named :data:`EXPIRY_INDEX` that exists with another period is brought to
    the declared one (``collMod``: ``create_indexes`` refuses an index that exists with other
    options, and this needs no rebuild); an existing one no longer declared is dropped (its
    retention was turned off). ``retired`` names indexes earlier versions created that now stand
    in the way: they are dropped where found.
    """
    for name in collections if collections is not None else list(indexes):
        existing = await db[name].index_information()
        for index in sorted(set((retired or {}).get(name, ())) & set(existing)):
            await db[name].drop_index(index)
        wanted = list(indexes[name])
        expiry = next((index for index in wanted if index.document["name"] == EXPIRY_INDEX), None)
        if EXPIRY_INDEX in existing:
            if expiry is None:
                await db[name].drop_index(EXPIRY_INDEX)
            else:
                wanted.remove(expiry)
                await _retune_expiry(db, name, existing[EXPIRY_INDEX], expiry)
        if wanted:
            await db[name].create_indexes(wanted)


async def _retune_expiry(db: AsyncDatabase[Document], name: str, current: Document, wanted: IndexModel) -> None:
    """Bring an existing TTL index to ``wanted``'s period."""
    seconds = wanted.document["expireAfterSeconds"]
    if current.get("expireAfterSeconds") != seconds:
        await db.command("collMod", name, index={"name": EXPIRY_INDEX, "expireAfterSeconds": seconds})


LOOKUP_CHUNK = 100  # the stand-in's $in gets slower per key beyond ~100 keys


async def find_by_ids(
    collection: AsyncCollection[Document], ids: Sequence[str], *, field: str = "_id", projection: Any = None
) -> dict[str, Document]:
    """Documents whose ``field`` is one of ``ids``, keyed by that field, fetched in chunks."""
    found: dict[str, Document] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        query = {field: {"$in": list(ids[start : start + LOOKUP_CHUNK])}}
        async for doc in collection.find(query, projection):
            found[doc[field]] = doc
    return found


async def insert_new(collection: AsyncCollection[Document], docs: Sequence[Document]) -> list[int]:
    """Insert ``docs`` in one unordered write; the positions of those refused as already stored, in order.

    An insert of many documents is one commit, where an upsert is one per document in the embedded
    stand-in: a writer whose documents are mostly new inserts them and updates only the refused.
    Any other failure (another write error, a write-concern error) is raised.
    """
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if exc.details.get("writeConcernErrors") or any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return sorted(error["index"] for error in errors)
    return []
