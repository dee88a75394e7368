"""The deployment state machine and its approval gate (no I/O).

Status per (version, environment); ``None`` is "never reported":

- (none) → ``deploying`` | ``deployed`` | ``failed``: many pipelines report only the end state, so a
  first ``deployed`` or ``failed`` applies, and its history row says no ``deploying`` was seen
  (``skipped_deploying``);
- ``deploying`` → ``deployed`` | ``failed``;
- ``deployed`` → ``rolled_back`` | ``retired`` | ``deploying`` (redeploy);
- ``failed``, ``rolled_back``, ``retired`` → ``deploying`` (redeploy).

The approval gate: moving to ``deploying`` or ``deployed`` in an environment that requires
approval (``DEPLOY_TRACKER_APPROVAL_ENVIRONMENTS``, default ``prod``) needs an approved version.
``failed``, ``rolled_back`` and ``retired`` are never gated: a pipeline must always be able to say
that something stopped running. The provenance gate stops the same moves, in the environments of
``DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS`` (default none), for a version registered without a
signature one of its team's signing keys verified.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

REDEPLOY = frozenset({"deploying"})
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"deploying", "deployed", "failed"}),
    "deploying": frozenset({"deployed", "failed"}),
    "deployed": frozenset({"rolled_back", "retired", "deploying"}),
    "failed": REDEPLOY,
    "rolled_back": REDEPLOY,
    "retired": REDEPLOY,
}
# A version's overall status is the most advanced of its environments'.
ADVANCEMENT = {"registered": 0, "retired": 1, "rolled_back": 2, "failed": 3, "deploying": 4, "deployed": 5}
# The statuses that put a version to work in an environment: the only ones the approval gate stops.
GATED_STATUSES = frozenset({"deploying", "deployed"})
APPROVED = "approved"


def decide(current: dict[str, Any] | None, status: str, occurred_at: datetime) -> str:
    """``applied``, or why the report leaves the status alone (``out_of_order``, ``illegal_transition``)."""
    if current is not None and occurred_at < current["occurred_at"]:
        return "out_of_order"
    previous = current["status"] if current else None
    return "applied" if status in TRANSITIONS[previous] else "illegal_transition"


def skips_deploying(previous: str | None, status: str) -> bool:
    """Whether a first report of an environment is its end state, with no ``deploying`` seen before it."""
    return previous is None and status != "deploying"


def needs_approval(environment: str, status: str, approval_environments: Collection[str]) -> bool:
    """Whether moving to ``status`` in ``environment`` needs an approved version."""
    return status in GATED_STATUSES and environment in approval_environments


def needs_provenance(environment: str, status: str, provenance_environments: Collection[str]) -> bool:
    """Whether moving to ``status`` in ``environment`` needs a version with verified provenance."""
    return status in GATED_STATUSES and environment in provenance_environments


def provenance_verified(version: dict[str, Any]) -> bool:
    """Whether the version was registered with a signature its team's key verified (unknown: no)."""
    return version.get("provenance_verified") is True


def approval_status(version: dict[str, Any]) -> str:
    """The version's approval status; a version nobody decided on yet (no ``approval``) is ``pending``."""
    approval = version.get("approval") or {}
    return str(approval.get("status") or "pending")


def overall(environments: dict[str, dict[str, Any]]) -> str:
    """The most advanced status across environments, ``registered`` before any report."""
    statuses = [env["status"] for env in environments.values()]
    return max(statuses, key=ADVANCEMENT.__getitem__) if statuses else "registered"
