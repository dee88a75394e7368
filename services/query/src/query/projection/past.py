"""A model as it stood at a past instant, and its timelines, from the history the read model holds (pure, no I/O).

Registration's events of a model (``ReadModel.history``) are replayed, up to the instant, into a
scratch :class:`ReadModel` with the same handlers the projection applies (:mod:`query.projection.apply`);
each environment's status is then the latest *applied* deployment report the tracker had recorded
by then (``ReadModel.reports``, by ``received_at``). The live read model is never changed, and the
work is bounded by the model's own history.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from query.projection.apply import apply_event, event_of, overall
from query.projection.model import ReadModel
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.ids import version_id
from registry_contract.times import as_utc

ALIAS_EVENTS = (messages.ALIAS_SET, messages.ALIAS_REMOVED)
# The changes of a model the console's timeline shows (with each environment's status changes).
TIMELINE_EVENTS = (*ALIAS_EVENTS, messages.VERSION_APPROVAL_CHANGED, messages.MODEL_VERSION_DELETED)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LATER = datetime.max.replace(tzinfo=UTC)  # where a row without a readable time stands: after any instant asked


@dataclass(frozen=True)
class Since:
    """Where a reader's current access to a model began: the ``model_shared`` event that opened it (for ``team``)."""

    at: datetime
    position: int
    team: str | None = None

    def received(self, report: Document) -> bool:
        """Whether the tracker recorded ``report`` since this access began (an undated one: not)."""
        received = as_utc(report.get("received_at"))
        return received is not None and received >= self.at


NEVER = Since(LATER, 2**63)  # a reader whose share the history does not show
SHARE_EVENTS = (messages.MODEL_SHARED, messages.MODEL_UNSHARED)


def every(_: Document) -> bool:
    """Every report is shown (to the model's team and admins)."""
    return True


def at_or_before(value: object, at: datetime) -> bool:
    """Whether the stored time ``value`` is ``at`` or earlier (a missing or unreadable one counts as later)."""
    moment = as_utc(value)
    return moment is not None and moment <= at


def replay_ends(rows: list[Document]) -> list[datetime]:
    """For each history row (``rows`` by position), the latest time up to it (a missing time: :data:`LATER`).

    The rows an instant ``at`` replays are the first ``bisect_right(ends, at)``: the replay stops at
    the first row dated after ``at``, even when a later row's clock says earlier.
    """
    ends, latest = [], EPOCH
    for row in rows:
        latest = max(latest, as_utc(row.get("time")) or LATER)
        ends.append(latest)
    return ends


def state_at(live: ReadModel, model_id: str, at: datetime) -> ReadModel:
    """A scratch read model holding only ``model_id`` as it stood at ``at`` (no model: it did not exist then)."""
    scratch = ReadModel()
    rows = in_order(live.history.get(model_id, []))
    for row in rows[: bisect_right(replay_ends(rows), at)]:
        apply_event(scratch, event_of(row))
    reports = [row for row in live.reports.get(model_id, []) if at_or_before(row.get("received_at"), at)]
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


def in_order(rows: Iterable[Document]) -> list[Document]:
    """History rows in the order the projection applied them (by position)."""
    return sorted(rows, key=_position)


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
        if kind not in SHARE_EVENTS or row["data"].get("with_team") != team:
            continue
        if kind == messages.MODEL_UNSHARED:
            opened = None
        elif opened is None:
            opened = row
    began = as_utc(opened.get("time")) if opened is not None else None
    if opened is None or began is None:
        return NEVER
    return Since(began, _position(opened), team)


def alias_moves(rows: Iterable[Document], alias: str, since: Since | None) -> list[Document]:
    """Every set, move and removal of ``alias`` (history rows), oldest first, from ``since`` on."""
    return [
        row
        for row in rows
        if row.get("type") in ALIAS_EVENTS and row["data"].get("alias") == alias and _after(row, since)
    ]


def environment_changes(reports: Iterable[Document], environment: str, since: Since | None) -> list[Document]:
    """The applied reports of ``environment`` (every status change there), oldest first, from ``since`` on."""
    of_environment = (row for row in reports if str(row.get("environment")) == environment)
    return environments_changes(of_environment, since).get(environment, [])


def environments_changes(reports: Iterable[Document], since: Since | None) -> dict[str, list[Document]]:
    """Per environment, its applied reports, oldest first, from ``since`` on, in one pass over ``reports``.

    A report without a readable ``received_at`` cannot be placed on a timeline and is left out.
    """
    found: dict[str, list[Document]] = {}
    for row in reports:
        if (
            row.get("outcome") == "applied"
            and as_utc(row.get("received_at")) is not None
            and (since is None or since.received(row))
        ):
            found.setdefault(str(row.get("environment")), []).append(row)
    return {environment: sorted(rows, key=_received) for environment, rows in found.items()}


def visible_history(rows: list[Document], since: Since | None) -> list[Document]:
    """The history rows a reader may see: all of them, or those from the share that opened its access.

    A reader learns nothing of the model's other readers: the shares and unsharings of other teams
    are left out.
    """
    if since is None:
        return rows
    return [row for row in rows if _position(row) >= since.position and _about(row, since.team)]


def _about(row: Document, team: str | None) -> bool:
    """Whether ``row`` is for ``team`` to see: any row but another team's share or unsharing."""
    return row.get("type") not in SHARE_EVENTS or (row.get("data") or {}).get("with_team") == team


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
    return as_utc(row.get("received_at")) or EPOCH, _position(row)
