"""The deploy-tracker's collections and their indexes: the tracker reads and writes only these.

``known_versions`` is the tracker's own table of the versions it may take reports for, kept from
registration's events (:mod:`deploy_tracker.known_versions`), with the deployment state the tracker
owns (``environments``, ``status``). ``cursors`` keeps how far that table has read registration's
event log, so a restart catches up from there.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.config import DeployTrackerSettings
from registry_contract.documents import Document
from shared.chassis.mongo import ensure_indexes, expiry_index

DEPLOYMENTS = "deployments"
KNOWN_VERSIONS = "known_versions"
CURSORS = "cursors"
DEPLOY_OUTBOX = "deploy_outbox"
DEPLOY_RELAY_CHECKPOINTS = "deploy_relay_checkpoints"
WEBHOOKS = "webhooks"
WEBHOOK_DELIVERIES = "webhook_deliveries"

INDEXES: dict[str, list[IndexModel]] = {
    DEPLOYMENTS: [
        IndexModel([("version_id", ASCENDING), ("position", ASCENDING)], name="version_history"),
        IndexModel([("model_id", ASCENDING), ("received_at", DESCENDING)], name="model_recent"),
        IndexModel([("team", ASCENDING), ("received_at", DESCENDING)], name="team_recent"),
    ],
    KNOWN_VERSIONS: [],  # read by _id (the version id) only
    CURSORS: [],
    DEPLOY_OUTBOX: [
        IndexModel([("writer", ASCENDING), ("seq", ASCENDING)], name="writer_seq"),
        # The event log it serves (GET /internal/v1/events?after=…), in the order of every writer's rows.
        IndexModel([("position", ASCENDING)], name="position"),
    ],
    DEPLOY_RELAY_CHECKPOINTS: [],
    WEBHOOKS: [IndexModel([("team", ASCENDING), ("active", ASCENDING)], name="team_active")],
    WEBHOOK_DELIVERIES: [
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due"),
        IndexModel([("webhook_id", ASCENDING), ("created_at", DESCENDING)], name="by_webhook"),
    ],
}


def declared_indexes(settings: DeployTrackerSettings | None = None) -> dict[str, list[IndexModel]]:
    """:data:`INDEXES` with the webhook deliveries' TTL index of ``settings``' retention (default: its default)."""
    days = (settings or DeployTrackerSettings.model_construct()).webhook_delivery_retention_days
    expiring = {WEBHOOK_DELIVERIES: expiry_index("created_at", days * 86_400)}
    return {name: [*indexes, *expiring.get(name, [])] for name, indexes in INDEXES.items()}


async def ensure_storage(db: AsyncDatabase[Document], settings: DeployTrackerSettings | None = None) -> None:
    """Create the tracker's indexes (idempotent), the deliveries' retention as ``settings`` says."""
    await ensure_indexes(db, declared_indexes(settings))
