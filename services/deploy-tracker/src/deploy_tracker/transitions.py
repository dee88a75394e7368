"""The deployment state machine of DESIGN §2 (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Status per (version, environment); None is "never reported".
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"deploying"}),
    "deploying": frozenset({"deployed", "failed"}),
    "deployed": frozenset({"rolled_back", "retired", "deploying"}),
    "failed": frozenset({"deploying"}),
    "rolled_back": frozenset(),
    "retired": frozenset(),
}
# A version's overall status is the most advanced of its environments' (DESIGN §2).
ADVANCEMENT = {"registered": 0, "retired": 1, "rolled_back": 2, "failed": 3, "deploying": 4, "deployed": 5}


def decide(current: dict[str, Any] | None, status: str, occurred_at: datetime) -> str:
    """``applied``, or why the report leaves the status alone (``out_of_order``, ``illegal_transition``)."""
    if current is not None and occurred_at < current["occurred_at"]:
        return "out_of_order"
    previous = current["status"] if current else None
    return "applied" if status in TRANSITIONS[previous] else "illegal_transition"


def overall(environments: dict[str, dict[str, Any]]) -> str:
    """The most advanced status across environments, ``registered`` before any report."""
    statuses = [env["status"] for env in environments.values()]
    return max(statuses, key=ADVANCEMENT.__getitem__) if statuses else "registered"
