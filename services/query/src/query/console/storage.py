"""The web console's collection: its sign-ins, in the query service's own database."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from shared.chassis.mongo import EXPIRY_INDEX

CONSOLE_SESSIONS = "console_sessions"

INDEXES: dict[str, list[IndexModel]] = {
    # Each sign-in is removed at its absolute expiry by the TTL monitor.
    CONSOLE_SESSIONS: [IndexModel([("expires_at", ASCENDING)], name=EXPIRY_INDEX, expireAfterSeconds=0)],
}
