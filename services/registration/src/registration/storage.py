"""Registration's database: its collections and their indexes, created by the service at start-up.

No other service reads or writes these; they learn what happens here from ``registry.events``
and, to bootstrap or rebuild, from the internal event log (:mod:`registration.log_routes`).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from registry_contract.documents import Document

MODELS = "models"
MODEL_VERSIONS = "model_versions"
# Where earlier versions kept deleted versions' tombstones; they now replace the version in
# MODEL_VERSIONS (its _id keeps the number taken) and are moved there at start.
DELETED_VERSIONS = "deleted_versions"
OUTBOX = "outbox"
RELAY_CHECKPOINTS = "relay_checkpoints"
SHARES = "shares"
API_KEYS = "api_keys"
TRUST_RULES = "trust_rules"
SIGNING_KEYS = "signing_keys"
# What registration knows of deployments, from the tracker's deployment_status_changed events:
# version id -> {environment: status}; refuses deleting a version that runs somewhere.
DEPLOYED_ENVIRONMENTS = "deployed_environments"

# Only what registration itself reads: models and versions by id (SemVer precedence uniqueness is
# the version's _id itself: model id + precedence key), the outbox by command, by writer, by model
# and by position.
# Lists, filters, feeds and lineage are the query's, answered from its projection.
INDEXES: dict[str, list[IndexModel]] = {
    MODELS: [IndexModel([("team", ASCENDING), ("name", ASCENDING)], unique=True, name="team_name")],
    MODEL_VERSIONS: [],
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
        # A model's newest revision (GET /internal/v1/versions answers it).
        IndexModel([("model_id", ASCENDING), ("position", ASCENDING)], name="model_history"),
        # The event log (GET /internal/v1/events) pages through every row in position order.
        IndexModel([("position", ASCENDING)], name="position"),
    ],
    RELAY_CHECKPOINTS: [],
    SHARES: [],
    API_KEYS: [IndexModel([("team", ASCENDING)], name="team")],
    # A team's rules, read for each token that names the team and listed by its admins.
    TRUST_RULES: [IndexModel([("team", ASCENDING), ("deleted", ASCENDING)], name="team")],
    # A team's signing keys, read for each signed registration and listed by its admins.
    SIGNING_KEYS: [
        IndexModel([("team", ASCENDING), ("deleted", ASCENDING)], name="team"),
        # A team's live keys: one per fingerprint, and one per quota slot (concurrent adds cannot
        # trust a key twice, nor go past the quota; registration.signing_keys).
        IndexModel(
            [("team", ASCENDING), ("fingerprint", ASCENDING)],
            name="team_fingerprint_live",
            unique=True,
            partialFilterExpression={"deleted": False},
        ),
        IndexModel(
            [("team", ASCENDING), ("slot", ASCENDING)],
            name="team_slot_live",
            unique=True,
            partialFilterExpression={"deleted": False, "slot": {"$exists": True}},
        ),
    ],
    DEPLOYED_ENVIRONMENTS: [],
}

# Indexes earlier versions created that are no longer read here (dropped when found): each one
# cost every write a further entry on the database server.
RETIRED_INDEXES: dict[str, list[str]] = {
    OUTBOX: ["causation"],  # unique on the bare ce_id: one id namespace for every team
    # The query's lists, feed and lineage, served by its projection since each service owns its data.
    MODELS: [
        "created",
        "updated",
        "name_key",
        "team_created",
        "readers_created",
        "framework_created",
        "targets_created",
        "tags_created",
        "feed",
        "readers_feed",
        "former_readers_feed",
    ],
    MODEL_VERSIONS: ["children", "status_model", "team_recent", "model_stable"],
    SHARES: ["with_team"],
}

# Model fields earlier versions kept for the query's lists, feed and headline (the query's
# projection derives them from the events now): removed when found, so what is stored is what
# registration maintains, and nobody reading the database takes a frozen headline for a live one.
RETIRED_MODEL_FIELDS = (
    "latest_version",
    "latest_rank",
    "framework",
    "deployment_targets",
    "tag_pairs",
    "version_count",
    "updated_at",
    "created_key",
    "updated_key",
    "name_key",
    "feed_key",
    "former_readers",
    "unshared_at",
    "own_metadata",
)


async def retire_model_fields(db: AsyncDatabase[Document]) -> int:
    """Remove :data:`RETIRED_MODEL_FIELDS` from the models that still have them; how many changed (idempotent).

    A description or tags stay only where the team gave them to the model itself (``own_metadata``
    named them); elsewhere they were copies of the latest version's, like the rest of the headline.
    """
    holding = {"$or": [{field: {"$exists": True}} for field in RETIRED_MODEL_FIELDS]}
    owned = {"$ifNull": ["$own_metadata", []]}
    kept_if_owned = {
        field: {"$cond": [{"$in": [field, owned]}, f"${field}", "$$REMOVE"]} for field in ("description", "tags")
    }
    retire: list[dict[str, Any]] = [{"$set": kept_if_owned}, {"$unset": list(RETIRED_MODEL_FIELDS)}]
    result = await db[MODELS].update_many(holding, retire)
    return result.modified_count


async def move_tombstones(db: AsyncDatabase[Document]) -> int:
    """Move :data:`DELETED_VERSIONS`' tombstones into the versions collection; how many (idempotent).

    Each is written where its version was (``deleted: True``), then removed from the old
    collection: a start interrupted between the two writes it again, over itself.
    """
    moved = 0
    async for tombstone in db[DELETED_VERSIONS].find():
        await db[MODEL_VERSIONS].replace_one({"_id": tombstone["_id"]}, tombstone | {"deleted": True}, upsert=True)
        await db[DELETED_VERSIONS].delete_one({"_id": tombstone["_id"]})
        moved += 1
    return moved


BULK_WRITE_WIRE_VERSION = 25  # MongoDB 8.0: the cross-collection bulkWrite command


class UnsupportedServer(RuntimeError):
    """The MongoDB server is older than registration's writes need."""


async def require_bulk_write(db: AsyncDatabase[Document]) -> None:
    """Refuse to start on a server without ``bulkWrite`` (before 8.0), rather than fail every write.

    Each batch commits its documents with one cross-collection ``bulkWrite`` in its transaction
    (:meth:`registration.repository.MongoRepository.commit`).
    """
    hello = await db.client.admin.command("hello")
    if hello.get("maxWireVersion", 0) < BULK_WRITE_WIRE_VERSION:
        raise UnsupportedServer(
            f"registration needs MongoDB 8.0 or later (bulkWrite); the server speaks wire version "
            f"{hello.get('maxWireVersion')}"
        )


async def create_indexes(db: AsyncDatabase[Document]) -> None:
    """Create registration's indexes and drop retired ones; idempotent (run at every start)."""
    for name, indexes in INDEXES.items():
        if name in RETIRED_INDEXES:
            for index in sorted(set(RETIRED_INDEXES[name]) & set(await db[name].index_information())):
                await db[name].drop_index(index)
        if indexes:
            await db[name].create_indexes(indexes)
