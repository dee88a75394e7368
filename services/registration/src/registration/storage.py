"""Registration's database: its collections and their indexes, created by the service at start-up.

No other service reads or writes these; they learn what happens here from ``registry.events``
and, to bootstrap or rebuild, from the internal event log (:mod:`registration.log_routes`).
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.contract.documents import Document

MODELS = "models"
MODEL_VERSIONS = "model_versions"
DELETED_VERSIONS = "deleted_versions"  # tombstones: a deleted version's number is never reused
OUTBOX = "outbox"
RELAY_CHECKPOINTS = "relay_checkpoints"
SHARES = "shares"
API_KEYS = "api_keys"
# What registration knows of deployments, from the tracker's deployment_status_changed events:
# version id -> {environment: status}; refuses deleting a version that runs somewhere.
DEPLOYED_ENVIRONMENTS = "deployed_environments"

INDEXES: dict[str, list[IndexModel]] = {
    MODELS: [
        IndexModel([("team", ASCENDING), ("name", ASCENDING)], unique=True, name="team_name"),
        # Keyset pagination: every sort has a unique key, alone and behind each equality filter.
        IndexModel([("created_key", DESCENDING)], name="created"),
        IndexModel([("updated_key", DESCENDING)], name="updated"),
        IndexModel([("name_key", ASCENDING)], name="name_key"),
        IndexModel([("team", ASCENDING), ("created_key", DESCENDING)], name="team_created"),
        IndexModel([("readers", ASCENDING), ("created_key", DESCENDING)], name="readers_created"),
        IndexModel([("framework", ASCENDING), ("created_key", DESCENDING)], name="framework_created"),
        IndexModel([("deployment_targets", ASCENDING), ("created_key", DESCENDING)], name="targets_created"),
        IndexModel([("tag_pairs", ASCENDING), ("created_key", DESCENDING)], name="tags_created"),
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
        # SemVer precedence uniqueness is the _id itself (model id + precedence key). The headline
        # candidates: a model's versions by precedence.
        IndexModel(
            [("model_id", ASCENDING), ("prerelease", ASCENDING), ("version_key", DESCENDING)], name="model_stable"
        ),
        IndexModel([("status", ASCENDING), ("model_id", ASCENDING)], name="status_model"),
        IndexModel([("team", ASCENDING), ("created_at", DESCENDING)], name="team_recent"),
    ],
    DELETED_VERSIONS: [],
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
        # The event log (GET /internal/v1/events) pages through every row in position order.
        IndexModel([("position", ASCENDING)], name="position"),
    ],
    RELAY_CHECKPOINTS: [],
    SHARES: [IndexModel([("with_team", ASCENDING)], name="with_team")],
    API_KEYS: [IndexModel([("team", ASCENDING)], name="team")],
    DEPLOYED_ENVIRONMENTS: [],
}

# Indexes earlier versions created that now stand in the way (dropped when found).
RETIRED_INDEXES: dict[str, list[str]] = {
    OUTBOX: ["causation"],  # unique on the bare ce_id: one id namespace for every team
}


async def create_indexes(db: AsyncDatabase[Document]) -> None:
    """Create registration's indexes and drop retired ones; idempotent (run at every start)."""
    for name, indexes in INDEXES.items():
        if name in RETIRED_INDEXES:
            for index in sorted(set(RETIRED_INDEXES[name]) & set(await db[name].index_information())):
                await db[name].drop_index(index)
        if indexes:
            await db[name].create_indexes(indexes)
