"""MongoDB machinery every service uses: the client factory, a ping, index creation, chunked lookups.

Collections and their indexes belong to the service that owns them (its ``storage`` module, e.g.
``audit.storage``): each service creates its own at start-up with :func:`ensure_indexes`, and no
other service reads or writes them. TTL indexes named :data:`EXPIRY_INDEX` are brought to the
declared period when they exist with another (``collMod``), and dropped when the owner no longer
declares one (its retention turned off).

The collection names and indexes still declared below are registration's and the deploy-tracker's,
until those services declare them in their own ``storage`` modules (issue 23).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from shared.chassis.settings import CommonSettings
from shared.contract.documents import Document

MODELS = "models"
MODEL_VERSIONS = "model_versions"
OUTBOX = "outbox"
RELAY_CHECKPOINTS = "relay_checkpoints"
API_KEYS = "api_keys"
SHARES = "shares"
DEPLOYMENTS = "deployments"
DEPLOY_OUTBOX = "deploy_outbox"
DEPLOY_RELAY_CHECKPOINTS = "deploy_relay_checkpoints"
WEBHOOKS = "webhooks"
WEBHOOK_DELIVERIES = "webhook_deliveries"
EXPIRY_INDEX = "expiry"  # the TTL index of a collection whose documents expire

INDEXES: dict[str, list[IndexModel]] = {
    MODELS: [
        IndexModel([("team", ASCENDING), ("name", ASCENDING)], unique=True, name="team_name"),
        # Keyset pagination: every sort has a unique key, alone and behind each equality filter.
        IndexModel([("created_key", DESCENDING)], name="created"),
        IndexModel([("updated_key", DESCENDING)], name="updated"),
        IndexModel([("name_key", ASCENDING)], name="name_key"),
        IndexModel([("team", ASCENDING), ("created_key", DESCENDING)], name="team_created"),
        # Visibility: every non-admin list filters on readers (owner team + teams shared with).
        IndexModel([("readers", ASCENDING), ("created_key", DESCENDING)], name="readers_created"),
        IndexModel([("framework", ASCENDING), ("created_key", DESCENDING)], name="framework_created"),
        IndexModel([("deployment_targets", ASCENDING), ("created_key", DESCENDING)], name="targets_created"),
        IndexModel([("tag_pairs", ASCENDING), ("created_key", DESCENDING)], name="tags_created"),
        # The document feed (query: /v1/assistant/documents) reads in change order: every model
        # for an admin, else a team's readable models merged with those unshared from it.
        IndexModel([("feed_key", ASCENDING)], name="feed"),
        IndexModel([("readers", ASCENDING), ("feed_key", ASCENDING)], name="readers_feed"),
        IndexModel([("former_readers", ASCENDING), ("feed_key", ASCENDING)], name="former_readers_feed"),
    ],
    MODEL_VERSIONS: [
        # Lineage: the versions derived from one version (only versions that name a parent).
        IndexModel(
            [("parent.team", ASCENDING), ("parent.name", ASCENDING), ("parent.version", ASCENDING)],
            name="children",
            sparse=True,
        ),
        # SemVer precedence uniqueness is the _id itself (model id + precedence key), so a duplicate
        # cannot race past the check. Version lists and "latest": equality prefix, then precedence.
        IndexModel(
            [("model_id", ASCENDING), ("prerelease", ASCENDING), ("version_key", DESCENDING)], name="model_stable"
        ),
        IndexModel([("status", ASCENDING), ("model_id", ASCENDING)], name="status_model"),
        # A team's recent registrations (query: GET /v1/teams/{team}/versions, the console's team page).
        IndexModel([("team", ASCENDING), ("created_at", DESCENDING)], name="team_recent"),
    ],
    OUTBOX: [
        # One outcome per command: this is also the processed-commands dedupe record. The key is
        # the sender's team and the command's ce_id, so no team's id can collide with another's.
        IndexModel(
            [("command_key", ASCENDING)],
            unique=True,
            name="command_key",
            partialFilterExpression={"command_key": {"$type": "string"}},
        ),
        # The relay reads each writer's rows after its checkpoint.
        IndexModel([("writer", ASCENDING), ("seq", ASCENDING)], name="writer_seq"),
        IndexModel([("model_id", ASCENDING), ("position", ASCENDING)], name="model_history"),
    ],
    RELAY_CHECKPOINTS: [],
    SHARES: [IndexModel([("with_team", ASCENDING)], name="with_team")],
    DEPLOYMENTS: [
        IndexModel([("version_id", ASCENDING), ("position", ASCENDING)], name="version_history"),
        # A model's recent reports across its versions (query: GET …/deployments, the console's timeline).
        IndexModel([("model_id", ASCENDING), ("received_at", DESCENDING)], name="model_recent"),
        IndexModel([("team", ASCENDING), ("received_at", DESCENDING)], name="team_recent"),
    ],
    DEPLOY_OUTBOX: [IndexModel([("writer", ASCENDING), ("seq", ASCENDING)], name="writer_seq")],
    DEPLOY_RELAY_CHECKPOINTS: [],
    WEBHOOKS: [IndexModel([("team", ASCENDING), ("active", ASCENDING)], name="team_active")],
    WEBHOOK_DELIVERIES: [
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
        IndexModel([("webhook_id", ASCENDING), ("created_at", DESCENDING)], name="by_webhook"),
    ],
    API_KEYS: [
        IndexModel([("team", ASCENDING)], name="team"),
    ],
}


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
            await asyncio.wait_for(client.admin.command("ping"), timeout)
        except Exception:  # any failure to answer is "not reachable"
            return False
        return True

    return reachable


def database(client: AsyncMongoClient[Document], settings: CommonSettings) -> AsyncDatabase[Document]:
    """The registry's database."""
    return client[settings.mongodb_database]


# Registration's indexes that earlier versions created and that now stand in the way (``retired``).
RETIRED_INDEXES: dict[str, list[str]] = {
    OUTBOX: ["causation"],  # unique on the bare ce_id: one id namespace for every team
}


def expiry_index(field: str, seconds: float) -> list[IndexModel]:
    """The TTL index :data:`EXPIRY_INDEX` deleting documents ``seconds`` after their ``field``; none for 0 (kept)."""
    period = round(seconds)
    return [IndexModel([(field, ASCENDING)], name=EXPIRY_INDEX, expireAfterSeconds=period)] if period else []


def declared_indexes(settings: CommonSettings | None = None) -> dict[str, list[IndexModel]]:
    """:data:`INDEXES` with the webhook deliveries' TTL index of ``settings``' retention (default: its default)."""
    days = (settings or CommonSettings.model_construct()).webhook_delivery_retention_days
    expiring = {WEBHOOK_DELIVERIES: expiry_index("created_at", days * 86_400)}
    return {name: [*indexes, *expiring.get(name, [])] for name, indexes in INDEXES.items()}


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
