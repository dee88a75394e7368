"""Applying deployment reports: each new report is decided, recorded in history and emitted, a batch at a time."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from deploy_tracker.effects import Stamp, emit_rejection, emit_status_change, record
from deploy_tracker.reports import Refused, Rejected, Report, Reported, judge, parse, status_after
from shared.contract.documents import Document
from shared.contract.ids import version_id
from shared.contract.sortkeys import time_key
from shared.outbox.rows import OutboxLog


@dataclass(frozen=True)
class Effects:
    """What one report writes: its history row, and the event and status change it causes, if any."""

    history: Document
    outbox: Document | None = None
    status: tuple[str, Document] | None = None  # (version id, its new status fields)


@dataclass
class Changes:
    """Every write of one batch: history rows, version status fields, outbox rows, models' feed keys.

    A status change moves its model to the end of the query service's document feed
    (``feed_key``, as registration sets it on every model change), in the same transaction.
    """

    history: list[Document] = field(default_factory=list)
    version_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Document] = field(default_factory=list)
    feed_keys: dict[str, str] = field(default_factory=dict)  # model id -> its new feed key


class Repository(OutboxLog, Protocol):
    """What the report handler needs from storage."""

    async def seen(self, report_keys: Sequence[str]) -> set[str]:
        """Keys (team-scoped ids) of reports already recorded."""
        ...

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        """Versions by id."""
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
) -> Effects:
    """Decide what one report does, record it in history, and emit its event (if it causes one)."""
    verdict = judge(report, parsed, versions, approval_environments=approval_environments)
    history = record(report, stamp, verdict)
    if isinstance(verdict, Refused):
        return Effects(history, emit_rejection(report, verdict))
    if verdict.outcome != "applied":
        return Effects(history)  # out of order: recorded in history, status untouched (DESIGN §2)
    status = status_after(verdict, report.event.id, stamp.at)
    return Effects(history, emit_status_change(report, verdict, status["status"]), (verdict.version_id, status))


class _Batch:
    """The versions one batch touches, updated in memory as its reports apply, and its writes."""

    def __init__(self, versions: dict[str, Document], now: datetime) -> None:
        self.versions, self.now = versions, now
        self.changes = Changes()

    def add(self, effects: Effects) -> None:
        self.changes.history.append(effects.history)
        if effects.outbox is not None:
            self.changes.outbox.append(effects.outbox)
        if effects.status is not None:
            vid, fields = effects.status
            self.versions[vid].update(fields)  # later reports of the batch start from here
            self.changes.version_sets[vid] = fields
            model_id = self.versions[vid]["model_id"]
            self.changes.feed_keys[model_id] = time_key(self.now, model_id)


async def handle_reports(
    reports: Sequence[Report], *, repo: Repository, approval_environments: Collection[str] = frozenset()
) -> list[Document]:
    """Record every new report in history (applied or not); return the history rows written.

    ``approval_environments`` are where a version goes to work only once approved (none unless given:
    the service's setting, default ``prod``, decides).
    """
    now, first_position = datetime.now(UTC), time.time_ns()
    fresh = _first_of_each(reports, await repo.seen([r.key for r in reports]))
    parsed = [(report, parse(report.event)) for report in fresh]
    wanted = {version_id(d.team, d.name, d.version) for _, d in parsed if isinstance(d, Reported)}
    batch = _Batch(await repo.versions_by_id(sorted(wanted)), now)
    for offset, (report, data) in enumerate(parsed):
        stamp = Stamp(now, first_position + offset)
        effects = handle_report(
            report, data, stamp=stamp, versions=batch.versions, approval_environments=approval_environments
        )
        batch.add(effects)
    if batch.changes.history:
        await repo.commit(batch.changes)
    return batch.changes.history


def _first_of_each(reports: Iterable[Report], seen: set[str]) -> list[Report]:
    """Reports not recorded before, the first of each key only (a redelivery changes nothing)."""
    fresh: dict[str, Report] = {}
    for report in reports:
        if report.key not in seen:
            fresh.setdefault(report.key, report)
    return list(fresh.values())
