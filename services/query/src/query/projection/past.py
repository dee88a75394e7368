"""A model as it stood at a past instant, and its timelines, from the history the read model holds (pure, no I/O).

Registration's events of a model (``ReadModel.history``) are replayed, up to the instant, into a
scratch :class:`ReadModel` with the same handlers the projection applies (:mod:`query.projection.apply`);
each environment's status is then the latest *applied* deployment report the tracker had recorded
by then (``ReadModel.reports``, by ``received_at``). The live read model is never changed, and the
work is bounded by the model's own history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from query.projection.apply import apply_event, event_of, overall
from query.projection.model import ReadModel
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.ids import version_id

ALIAS_EVENTS = (messages.ALIAS_SET, messages.ALIAS_REMOVED)
# The changes of a model the console's timeline shows (with each environment's status changes).
TIMELINE_EVENTS = (*ALIAS_EVENTS, messages.VERSION_APPROVAL_CHANGED, messages.MODEL_VERSION_DELETED)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Since:
    """Where a reader's current access to a model began: the ``model_shared`` event that opened it."""

    at: datetime
    position: int


NEVER = Since(datetime.max.replace(tzinfo=UTC), 2**63)  # a reader whose share the history does not show


def utc(value: object) -> datetime:
    """A stored time as an aware UTC datetime (naive ones are UTC; anything else is the epoch)."""
    if not isinstance(value, datetime):
        return EPOCH
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def state_at(live: ReadModel, model_id: str, at: datetime) -> ReadModel:
    """A scratch read model holding only ``model_id`` as it stood at ``at`` (no model: it did not exist then)."""
    scratch = ReadModel()
    rows = sorted(live.history.get(model_id, []), key=_position)
    for row in rows:
        if utc(row.get("time")) <= at:
            apply_event(scratch, event_of(row))
    reports = [row for row in live.reports.get(model_id, []) if utc(row.get("received_at")) <= at]
    if model_id not in scratch.models:
        return ReadModel()
    scratch.reports[model_id] = reports
    applied = sorted((r for r in reports if r.get("outcome") == "applied"), key=_received)
    for row in applied:
        version = _version_of(scratch, row)
        if version is None:  # deleted by then
            continue
        environments = dict(version.get("environments") or {})
        environments[str(row["environment"])] = environment_entry(row)
        version["environments"], version["status"] = environments, overall(environments)
    return scratch


def environment_entry(row: Document) -> Document:
    """An environment's state after the applied report ``row`` (the tracker's ``status_after``)."""
    return {
        "status": row["status"],
        "occurred_at": row.get("occurred_at"),
        "report_id": row.get("report_id") or row["_id"],
        "target": row.get("target"),
        "updated_at": row.get("received_at"),
    }


def access_began(rows: Iterable[Document], team: str) -> Since:
    """Where ``team``'s current share of the model began: the first ``model_shared`` since its last unsharing.

    A team the history shows no current share for gets :data:`NEVER` (it sees no past at all).
    """
    opened: Document | None = None
    for row in rows:
        kind = row.get("type")
        if kind not in (messages.MODEL_SHARED, messages.MODEL_UNSHARED) or row["data"].get("with_team") != team:
            continue
        if kind == messages.MODEL_UNSHARED:
            opened = None
        elif opened is None:
            opened = row
    if opened is None:
        return NEVER
    return Since(utc(opened.get("time")), _position(opened))


def alias_moves(rows: Iterable[Document], alias: str, since: Since | None) -> list[Document]:
    """Every set, move and removal of ``alias`` (history rows), oldest first, from ``since`` on."""
    return [
        row
        for row in rows
        if row.get("type") in ALIAS_EVENTS and row["data"].get("alias") == alias and _after(row, since)
    ]


def environment_changes(reports: Iterable[Document], environment: str, since: Since | None) -> list[Document]:
    """The applied reports of ``environment`` (every status change there), oldest first, from ``since`` on."""
    found = (
        row
        for row in reports
        if row.get("outcome") == "applied"
        and row.get("environment") == environment
        and (since is None or utc(row.get("received_at")) >= since.at)
    )
    return sorted(found, key=_received)


def visible_history(rows: list[Document], since: Since | None) -> list[Document]:
    """The history rows a reader may see: all of them, or those from the share that opened its access."""
    if since is None:
        return rows
    return [row for row in rows if _position(row) >= since.position]


def _after(row: Document, since: Since | None) -> bool:
    return since is None or _position(row) >= since.position


def _version_of(scratch: ReadModel, row: Document) -> Document | None:
    try:
        return scratch.version(version_id(str(row["team"]), str(row["name"]), str(row["version"])))
    except (KeyError, ValueError):
        return None


def _position(row: Document) -> int:
    return int(row.get("position") or 0)


def _received(row: Document) -> tuple[datetime, int]:
    return utc(row.get("received_at")), _position(row)
