"""Applying deployment reports: each new report is decided, recorded in history and emitted, a batch at a time."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from deploy_tracker.effects import Stamp, emit_rejection, emit_report_recorded, emit_status_change, record
from deploy_tracker.reports import Refused, Rejected, Report, Reported, judge, parse, status_after
from deploy_tracker.transitions import APPROVED, approval_status
from registry_contract.documents import Document
from registry_contract.ids import version_id
from shared.outbox.rows import OutboxLog

# Asks registration for a version the tracker does not know yet: its row, or ``None``.
Lookup = Callable[[str, str, str], Awaitable[Document | None]]


@dataclass(frozen=True)
class Effects:
    """What one report writes: its history row, the events and status change it causes, if any."""

    history: Document
    outbox: tuple[Document, ...] = ()
    status: tuple[str, Document] | None = None  # (version id, its new status fields)


@dataclass
class Changes:
    """Every write of one batch: history rows, versions learned, version status fields, outbox rows.

    A history row filed under a model carries the position of the last outbox row its report
    wrote for that model (``revision``: the tracker's revision of the model), stamped once the
    commit has numbered the rows (:meth:`stamp_revisions`).
    """

    history: list[Document] = field(default_factory=list)
    learned: list[Document] = field(default_factory=list)  # versions registration told of, new to the table
    version_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # approvals registration confirmed on a re-check: version id -> {"approval", "revision"}, kept only
    # over an older revision (an event older than registration's answer never undoes it)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)
    # whether versions the table did not know to be signed were, as registration confirmed on a
    # re-check: version id -> {"provenance_verified"}, kept only where the row still does not know
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Document] = field(default_factory=list)
    filed: list[tuple[Document, tuple[Document, ...]]] = field(default_factory=list)

    def stamp_revisions(self) -> None:
        """Set each filed history row's ``revision`` from its outbox rows' positions (once numbered)."""
        for history, rows in self.filed:
            history["revision"] = max(row["position"] for row in rows)


class Repository(OutboxLog, Protocol):
    """What the report handler needs from storage."""

    async def seen(self, report_keys: Sequence[str]) -> set[str]:
        """Keys (team-scoped ids) of reports already recorded."""
        ...

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        """The tracker's known versions by id (deleted ones too, flagged ``deleted``)."""
        ...

    async def commit(self, changes: Changes) -> None:
        """Write a batch atomically."""
        ...


def handle_report(
    report: Report,
    parsed: Reported | Rejected,
    *,
    stamp: Stamp,
    versions: Mapping[str, Document],
    approval_environments: Collection[str] = frozenset(),
    provenance_environments: Collection[str] = frozenset(),
) -> Effects:
    """Decide what one report does, record it in history, and emit its event (if it causes one)."""
    verdict = judge(
        report,
        parsed,
        versions,
        approval_environments=approval_environments,
        provenance_environments=provenance_environments,
    )
    history = record(report, stamp, verdict)
    # Every report filed under a model reaches the read side, whatever became of it.
    recorded = (row,) if (row := emit_report_recorded(report, history)) is not None else ()
    if isinstance(verdict, Refused):
        return Effects(history, (emit_rejection(report, verdict), *recorded))
    if verdict.outcome != "applied":
        return Effects(history, recorded)  # out of order: an older report is history, never the status
    status = status_after(verdict, report.event.id, stamp.at)
    changed = emit_status_change(report, verdict, status)
    return Effects(history, (*recorded, changed), (verdict.version_id, status))


class _Batch:
    """The versions one batch touches, updated in memory as its reports apply, and its writes."""

    def __init__(self, versions: dict[str, Document], learned: dict[str, Document]) -> None:
        self.versions = versions | {vid: copy.deepcopy(row) for vid, row in learned.items()}
        self.changes = Changes(learned=list(learned.values()))

    def add(self, effects: Effects) -> None:
        self.changes.history.append(effects.history)
        self.changes.outbox.extend(effects.outbox)
        model = effects.history.get("model_id")
        if model is not None and (rows := tuple(row for row in effects.outbox if row["model_id"] == model)):
            self.changes.filed.append((effects.history, rows))
        if effects.status is not None:
            vid, fields = effects.status
            self.versions[vid].update(fields)  # later reports of the batch start from here
            self.changes.version_sets[vid] = fields


async def handle_reports(
    reports: Sequence[Report],
    *,
    repo: Repository,
    approval_environments: Collection[str] = frozenset(),
    provenance_environments: Collection[str] = frozenset(),
    lookup: Lookup | None = None,
    recheck: Lookup | None = None,
) -> list[Document]:
    """Record every new report in history (applied or not); return the history rows written.

    ``approval_environments`` are where a version goes to work only once approved (none unless given:
    the service's setting, default ``prod``, decides); ``provenance_environments`` where it goes to
    work only with verified provenance (the service's setting, default none). A version the tracker does not know yet is
    asked of registration through ``lookup`` (its event may still be on its way), and kept. A report
    the approval gate would refuse asks registration once more through ``recheck`` (the approval event
    may still be on its way too): an approval registration confirms is kept and the report judged on it.
    So does one the provenance gate would refuse while the table does not know whether the version
    was signed (its row made from an approval event, or from a registration event without the field).
    """
    now, first_position = datetime.now(UTC), time.time_ns()
    fresh = _first_of_each(reports, await repo.seen([r.key for r in reports]))
    parsed = [(report, parse(report.event)) for report in fresh]
    wanted = {version_id(d.team, d.name, d.version): d for _, d in parsed if isinstance(d, Reported)}
    known = await repo.versions_by_id(sorted(wanted))
    learned = await _look_up([d for vid, d in wanted.items() if vid not in known], lookup)
    batch = _Batch(known, learned)
    await _recheck(parsed, batch, recheck, approval_environments, provenance_environments)
    for offset, (report, data) in enumerate(parsed):
        stamp = Stamp(now, first_position + offset)
        effects = handle_report(
            report,
            data,
            stamp=stamp,
            versions=batch.versions,
            approval_environments=approval_environments,
            provenance_environments=provenance_environments,
        )
        batch.add(effects)
    if batch.changes.history:
        await repo.commit(batch.changes)
    return batch.changes.history


async def _look_up(unknown: Sequence[Reported], lookup: Lookup | None) -> dict[str, Document]:
    """The rows registration gives for versions the tracker does not know (those it knows too)."""
    if lookup is None or not unknown:
        return {}
    answers = await asyncio.gather(*(lookup(d.team, d.name, d.version) for d in unknown))
    return {row["_id"]: row for row in answers if row is not None}


async def _recheck(
    parsed: Sequence[tuple[Report, Reported | Rejected]],
    batch: _Batch,
    recheck: Lookup | None,
    approval_environments: Collection[str],
    provenance_environments: Collection[str],
) -> None:
    """Ask registration once per version a gate would refuse on what the table may not know yet; keep what it confirms.

    The approval gate: an approval registration confirms. The provenance gate: only where the row
    does not know whether the version was signed (``provenance_verified`` unknown), what registration says.
    """
    if recheck is None:
        return
    refused: dict[str, Reported] = {}
    for report, data in parsed:
        verdict = judge(
            report,
            data,
            batch.versions,
            approval_environments=approval_environments,
            provenance_environments=provenance_environments,
        )
        if not isinstance(verdict, Refused) or verdict.data is None:
            continue
        vid = version_id(verdict.data.team, verdict.data.name, verdict.data.version)
        unknown = verdict.why.reason == "unsigned" and batch.versions[vid].get("provenance_verified") is None
        if verdict.why.reason == "not_approved" or unknown:
            refused.setdefault(vid, verdict.data)
    if not refused:
        return
    answers = await asyncio.gather(*(recheck(d.team, d.name, d.version) for d in refused.values()))
    for vid, row in zip(refused, answers, strict=True):
        if row is None or row.get("deleted"):
            continue
        _keep_provenance(batch, vid, row)
        if approval_status(row) != APPROVED:
            continue
        revision = row.get("revision")
        if revision is not None and revision <= batch.versions[vid].get("revision", 0):
            continue  # the table already holds a newer event than this answer
        batch.versions[vid]["approval"] = row["approval"]
        if revision is not None:  # without one, only this batch relies on it
            batch.changes.approvals[vid] = {"approval": row["approval"], "revision": revision}


def _keep_provenance(batch: _Batch, vid: str, row: Document) -> None:
    """Whether the version was signed, as registration says, where the table did not know (a registration fixes it)."""
    verified = row.get("provenance_verified")
    if batch.versions[vid].get("provenance_verified") is None and isinstance(verified, bool):
        batch.versions[vid]["provenance_verified"] = verified
        batch.changes.provenance[vid] = {"provenance_verified": verified}


def _first_of_each(reports: Iterable[Report], seen: set[str]) -> list[Report]:
    """Reports not recorded before, the first of each key only (a redelivery changes nothing)."""
    fresh: dict[str, Report] = {}
    for report in reports:
        if report.key not in seen:
            fresh.setdefault(report.key, report)
    return list(fresh.values())
