"""The audit service's collections and their indexes: it reads and writes only these, in its own database.

``audit_log`` is the hash-chained log, ``audit_heads`` each chain's signed head, ``audit_verified``
what a full verification last reached, ``audit_records`` the Kafka records of the services' model
events (key, value, headers, under their entry's id, which is their digest): what evidence bundles
show of an event's data. The service creates these indexes at start-up.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.chassis.mongo import EXPIRY_INDEX

AUDIT_LOG = "audit_log"
AUDIT_HEADS = "audit_heads"
AUDIT_VERIFIED = "audit_verified"
AUDIT_RECORDS = "audit_records"

INDEXES: dict[str, list[IndexModel]] = {
    AUDIT_LOG: [
        IndexModel([("chain", ASCENDING), ("seq", ASCENDING)], unique=True, name="chain_seq"),
        IndexModel([("ts_key", DESCENDING)], name="recent"),
        IndexModel([("team", ASCENDING), ("ts_key", DESCENDING)], name="team_recent"),
        IndexModel([("correlation_id", ASCENDING), ("ts_key", DESCENDING)], name="correlation_recent"),
        # Evidence bundles: a model's entries in order. (Its accesses since a time use team_recent:
        # accesses are most of the log, so an index of their own would cost every insert for a
        # rare export.)
        IndexModel([("team", ASCENDING), ("model", ASCENDING), ("ts_key", ASCENDING)], name="team_model_time"),
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
    AUDIT_RECORDS: [],  # read by entry id only
}
