"""The ``AsyncMongoClient`` factory and every collection's indexes, declared in one place.

Indexes live here (not in the owning service) because `registry up` and the read side need
them too; each service still creates only its own collections' indexes at start-up. TTL indexes
whose period is a setting (:func:`expiry_indexes`) are brought to the configured period when
they exist with another (``collMod``), and dropped when the setting turns expiry off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
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
AUDIT_LOG = "audit_log"
AUDIT_HEADS = "audit_heads"
AUDIT_VERIFIED = "audit_verified"
DEPLOYMENTS = "deployments"
DEPLOY_OUTBOX = "deploy_outbox"
DEPLOY_RELAY_CHECKPOINTS = "deploy_relay_checkpoints"
WEBHOOKS = "webhooks"
WEBHOOK_DELIVERIES = "webhook_deliveries"
CONSOLE_SESSIONS = "console_sessions"
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
    AUDIT_LOG: [
        IndexModel([("chain", ASCENDING), ("seq", ASCENDING)], unique=True, name="chain_seq"),
        IndexModel([("ts_key", DESCENDING)], name="recent"),
        IndexModel([("team", ASCENDING), ("ts_key", DESCENDING)], name="team_recent"),
        IndexModel([("correlation_id", ASCENDING), ("ts_key", DESCENDING)], name="correlation_recent"),
        # Retention: only entries that carry an expiry date (access events, audit.links.extend)
        # are ever deleted, at that date; no other entry has the field, so none can expire.
        IndexModel(
            [("expires_at", ASCENDING)],
            name=EXPIRY_INDEX,
            expireAfterSeconds=0,
            partialFilterExpression={"expires_at": {"$type": "date"}},
        ),
    ],
    AUDIT_HEADS: [],
    AUDIT_VERIFIED: [],
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
    # The web console's sign-ins (query): each removed at its absolute expiry by the TTL monitor.
    CONSOLE_SESSIONS: [IndexModel([("expires_at", ASCENDING)], name=EXPIRY_INDEX, expireAfterSeconds=0)],
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


# Indexes earlier versions created that now stand in the way (dropped when found).
RETIRED_INDEXES: dict[str, list[str]] = {
    OUTBOX: ["causation"],  # unique on the bare ce_id: one id namespace for every team
}


def expiry_indexes(settings: CommonSettings) -> dict[str, IndexModel | None]:
    """The TTL index of each collection whose retention is a setting (``None``: kept for ever)."""
    seconds = round(settings.webhook_delivery_retention_days * 86_400)
    deliveries = IndexModel([("created_at", ASCENDING)], name=EXPIRY_INDEX, expireAfterSeconds=seconds)
    return {WEBHOOK_DELIVERIES: deliveries if seconds else None}


async def ensure_indexes(
    db: AsyncDatabase[Document], collections: list[str] | None = None, *, settings: CommonSettings | None = None
) -> None:
    """Create the declared indexes of ``collections`` (default: all) and drop retired ones; idempotent.

    ``settings`` gives the retention periods of :func:`expiry_indexes` (default: their defaults).
    """
    expiring = expiry_indexes(settings or CommonSettings.model_construct())
    for name in collections or list(INDEXES):
        if name in RETIRED_INDEXES:
            for index in sorted(set(RETIRED_INDEXES[name]) & set(await db[name].index_information())):
                await db[name].drop_index(index)
        indexes = list(INDEXES[name])
        if name in expiring:
            ttl = await _retune_expiry(db, name, expiring[name])
            indexes += [ttl] if ttl is not None else []
        await db[name].create_indexes(indexes)


async def _retune_expiry(db: AsyncDatabase[Document], name: str, wanted: IndexModel | None) -> IndexModel | None:
    """Bring an existing TTL index to ``wanted``'s period, or drop it; return what is still to create.

    ``create_indexes`` refuses an index that exists with other options, so a changed retention
    setting is applied with ``collMod`` (no rebuild), and a retention turned off drops the index.
    """
    current = (await db[name].index_information()).get(EXPIRY_INDEX)
    if current is None:
        return wanted
    if wanted is None:
        await db[name].drop_index(EXPIRY_INDEX)
        return None
    seconds = wanted.document["expireAfterSeconds"]
    if current.get("expireAfterSeconds") != seconds:
        await db.command("collMod", name, index={"name": EXPIRY_INDEX, "expireAfterSeconds": seconds})
    return None


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
