"""The web console's collections: its sessions and its sign-ins in flight, in the query service's own database."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from shared.chassis.mongo import EXPIRY_INDEX

CONSOLE_SESSIONS = "console_sessions"
CONSOLE_SIGN_INS = "console_sign_ins"  # sign-ins through the identity provider, between leaving and coming back

INDEXES: dict[str, list[IndexModel]] = {
    # Each sign-in is removed at its absolute expiry by the TTL monitor.
    CONSOLE_SESSIONS: [IndexModel([("expires_at", ASCENDING)], name=EXPIRY_INDEX, expireAfterSeconds=0)],
    CONSOLE_SIGN_INS: [IndexModel([("expires_at", ASCENDING)], name=EXPIRY_INDEX, expireAfterSeconds=0)],
}
