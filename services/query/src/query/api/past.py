"""Reads of the past: a model as of an instant (a few kept), an alias's moves, an environment's and a model's timelines.

Every list examines at most the model's own history and reports, and pages on a unique key (the
history's position, or the time then the row's id).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from query.api.pagination import SortSpec, encode_cursor
from query.api.reads import Page, Reads, by_position, cursor_key, fingerprint
from query.projection import past
from query.projection.model import ReadModel
from query.projection.past import Since
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.history_views import TimelineEntryPublic
from registry_contract.sortkeys import time_key
from registry_contract.times import as_utc

PAST_STATES_KEPT = 16  # scratch read models kept for repeated as-of reads (each holds one model)
_BY_TIME = SortSpec("at", "at_key", descending=False)
_NEWEST_FIRST = SortSpec("at", "at_key", descending=True)


class PastStates:
    """Reads of one model at a past instant, the last :data:`PAST_STATES_KEPT` kept.

    An entry is keyed by the model's revisions and row counts and by the instant's cut point (how
    many history rows it replays, how many reports had been recorded by then), so every instant
    between the same two events shares one entry, and a change of the model (even a late event
    folded into its past) makes a fresh one.
    """

    def __init__(self, read_model: ReadModel, kept: int = PAST_STATES_KEPT) -> None:
        self._read_model, self._kept = read_model, kept
        self._states: OrderedDict[tuple[object, ...], Reads] = OrderedDict()
        self._times: OrderedDict[str, tuple[tuple[object, ...], list[datetime], list[datetime]]] = OrderedDict()

    def reads_at(self, model_id: str, at: datetime) -> Reads:
        """Reads over a scratch read model holding ``model_id`` as it stood at ``at``."""
        live = self._read_model
        model = (
            model_id,
            live.revisions.get(("r", model_id)),
            live.revisions.get(("d", model_id)),
            len(live.history.get(model_id, ())),
            len(live.reports.get(model_id, ())),
        )
        replayed, received = self._sorted_times(model)
        key = (*model, bisect_right(replayed, at), bisect_right(received, at))
        found = self._states.get(key)
        if found is None:
            found = self._states[key] = Reads(past.state_at(live, model_id, at))
            while len(self._states) > self._kept:
                self._states.popitem(last=False)
        self._states.move_to_end(key)
        return found

    def _sorted_times(self, model: tuple[object, ...]) -> tuple[list[datetime], list[datetime]]:
        """The model's replay ends (:func:`past.replay_ends`) and its reports' sorted receipt times, kept per model."""
        model_id = str(model[0])
        kept = self._times.get(model_id)
        if kept is None or kept[0] != model:
            rows = past.in_order(self._read_model.history.get(model_id, []))
            times = (as_utc(row.get("received_at")) for row in self._read_model.reports.get(model_id, []))
            kept = self._times[model_id] = (model, past.replay_ends(rows), sorted(t for t in times if t is not None))
            while len(self._times) > self._kept:
                self._times.popitem(last=False)
        self._times.move_to_end(model_id)
        return kept[1], kept[2]


def alias_history(
    read_model: ReadModel, model: Document, alias: str, since: Since | None, *, limit: int, cursor: str | None
) -> Page:
    """Every set, move and removal of ``alias``, oldest first, paged by the history's position."""
    rows = past.alias_moves(read_model.history.get(model["_id"], []), alias, since)
    return by_position(rows, f"{model['_id']}|alias|{alias}", limit, cursor)


def environment_timeline(
    read_model: ReadModel, model: Document, environment: str, since: Since | None, *, limit: int, cursor: str | None
) -> Page:
    """Every status change in ``environment`` across the model's versions, oldest first."""
    rows = past.environment_changes(read_model.reports.get(model["_id"], []), environment, since)
    keyed = [(time_key(as_utc(row.get("received_at")) or past.EPOCH, str(row["_id"])), row) for row in rows]
    return _keyed_page(keyed, f"{model['_id']}|env|{environment}", _BY_TIME, limit, cursor)


def model_timeline(
    read_model: ReadModel, model: Document, since: Since | None, *, limit: int, cursor: str | None
) -> Page:
    """Alias moves, approvals, deletions and every environment's status changes, newest first."""
    model_id = model["_id"]
    events = (
        row
        for row in past.visible_history(read_model.history.get(model_id, []), since)
        if row.get("type") in past.TIMELINE_EVENTS
    )
    entries = [_event_entry(row) for row in events]
    for changes in past.environments_changes(read_model.reports.get(model_id, []), since).values():
        entries += [_report_entry(row) for row in changes]
    keyed = [(time_key(entry.at, entry.ref), entry.model_dump()) for entry in entries]
    return _keyed_page(keyed, f"{model_id}|timeline", _NEWEST_FIRST, limit, cursor)


def _event_entry(row: Document) -> TimelineEntryPublic:
    data, kind = row["data"], row["type"]
    common = {"at": row["time"], "ref": row["_id"], "correlation_id": row.get("correlation_id"), "by": data.get("by")}
    if kind in past.ALIAS_EVENTS:
        removed = kind == messages.ALIAS_REMOVED
        version = None if removed else data.get("version")
        return TimelineEntryPublic(
            kind="alias", version=version, subject=data.get("alias"), previous=data.get("previous_version"), **common
        )
    if kind == messages.VERSION_APPROVAL_CHANGED:
        return TimelineEntryPublic(
            kind="approval", version=data.get("version"), previous=data.get("from"), current=data.get("to"), **common
        )
    return TimelineEntryPublic(kind="deleted", version=data.get("version"), **common)


def _report_entry(row: Document) -> TimelineEntryPublic:
    return TimelineEntryPublic(
        kind="deployment",
        at=row.get("received_at"),  # always there: environments_changes leaves undated reports out
        version=row.get("version"),
        subject=row.get("environment"),
        previous=row.get("previous_status"),
        current=row.get("status"),
        by=row.get("reporter"),
        ref=str(row.get("report_id") or row["_id"]),
        correlation_id=row.get("correlation_id"),
    )


def _keyed_page(
    keyed: Iterable[tuple[str, Document]], owner: str, sort: SortSpec, limit: int, cursor: str | None
) -> Page:
    """A page of ``(unique key, row)`` pairs, ascending or descending by key, after the cursor's key."""
    ordered = sorted(keyed, key=lambda pair: pair[0])
    keys = [key for key, _ in ordered]
    scope = fingerprint(owner)
    last = cursor_key(cursor, sort, scope, str)
    if sort.descending:
        end = bisect_left(keys, last) if last is not None else len(keys)
        chosen = ordered[max(0, end - limit - 1) : end][::-1]
    else:
        start = bisect_right(keys, last) if last is not None else 0
        chosen = ordered[start : start + limit + 1]
    if len(chosen) <= limit:
        return Page([row for _, row in chosen])
    return Page([row for _, row in chosen[:limit]], encode_cursor(sort, chosen[limit - 1][0], scope))
