"""Applying deployment reports: authorize, validate, move the state machine, record everything."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from deploy_tracker.transitions import decide, overall
from shared import messages
from shared.auth import Principal
from shared.envelope import CloudEvent
from shared.ids import ANONYMOUS, model_id, sender_scoped, version_id
from shared.mongo import Document
from shared.outbox import OutboxLog, outbox_row

SOURCE = "/registry/deploy-tracker"


@dataclass(frozen=True)
class Report:
    """A deployment report with the principal of the key that sent it (``None``: no valid key)."""

    event: CloudEvent
    principal: Principal | None

    @property
    def key(self) -> str:
        """The report's identity: its ``ce_id`` within the sender's team, so no other sender can suppress it."""
        return sender_scoped(self.principal.team if self.principal else None, self.event.id)


@dataclass
class Changes:
    """Every write of one batch: history rows, version status fields, outbox rows."""

    history: list[Document] = field(default_factory=list)
    version_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Document] = field(default_factory=list)


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


async def handle_reports(reports: Sequence[Report], *, repo: Repository) -> list[Document]:
    """Record every new report in history (applied or not); return the history rows written."""
    now = datetime.now(UTC)
    base_position = time.time_ns()
    seen = await repo.seen([r.key for r in reports])
    fresh, keys = [], set()
    for report in reports:
        if report.key not in seen and report.key not in keys:
            keys.add(report.key)
            fresh.append((report, _parse(report.event)))
    wanted = {version_id(d.team, d.name, d.version) for _, d in fresh if isinstance(d, messages.VersionRef)}
    versions = await repo.versions_by_id(sorted(wanted))
    changes = Changes()
    for offset, (report, data) in enumerate(fresh):
        _apply(report, data, versions, changes, now, position=base_position + offset)
    if changes.history:
        await repo.commit(changes)
    return changes.history


def _parse(event: CloudEvent) -> messages.DeploymentStatusReported | str:
    if event.type != messages.DEPLOY_STATUS_REPORTED:
        return f"unsupported report type {event.type!r}"
    try:
        return messages.DeploymentStatusReported.model_validate(event.data)
    except ValidationError as exc:
        return "invalid report: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _apply(
    report: Report,
    data: messages.DeploymentStatusReported | str,
    versions: dict[str, Document],
    changes: Changes,
    now: datetime,
    *,
    position: int,
) -> None:
    event, principal = report.event, report.principal
    row: Document = {
        "_id": report.key,
        "report_id": event.id,
        "received_at": now,
        "position": position,
        "correlation_id": event.correlation_id,
        "reporter": principal.key_id if principal else None,
        "reporter_team": principal.team if principal else None,
    }
    if principal is None:
        return _reject(changes, row, event, "unauthenticated", "the report needs a valid API key", None)
    if isinstance(data, str):
        return _reject(changes, row, event, "invalid", data, None)
    # Only the owning team (or a platform admin) reports deployments; a share grants reading only.
    # A refused report is kept as the sender's, never merged into the target's history.
    if not principal.has("deployments:write") or not principal.acts_for(data.team):
        row["claimed"] = {"team": data.team, "name": data.name, "version": data.version}
        return _reject(changes, row, event, "forbidden", "this key may not report deployments of this model", None)
    row |= data.model_dump(mode="python") | {"occurred_at": data.occurred_at.astimezone(UTC)}
    vid = version_id(data.team, data.name, data.version)
    version = versions.get(vid)
    if version is None:
        return _reject(changes, row, event, "not_found", f"{data.team}/{data.name} has no version {data.version}", data)
    environments: dict[str, Any] = dict(version.get("environments") or {})
    current = environments.get(data.environment)
    outcome = decide(current, data.status, row["occurred_at"])
    previous = current["status"] if current else None
    row |= {"version_id": vid, "model_id": version["model_id"], "previous_status": previous}
    if outcome == "illegal_transition":
        message = f"{previous or 'registered'} → {data.status} is not allowed in {data.environment}"
        return _reject(changes, row, event, "conflict", message, data)
    changes.history.append(row | {"outcome": outcome})
    if outcome == "out_of_order":
        return None  # recorded in history, status untouched (DESIGN §2)
    environments[data.environment] = {
        "status": data.status,
        "occurred_at": row["occurred_at"],
        "report_id": event.id,
        "target": data.target,
        "updated_at": now,
    }
    version["environments"] = environments
    version["status"] = overall(environments)
    changes.version_sets[vid] = {"environments": environments, "status": version["status"]}
    payload = messages.DeploymentStatusChanged(
        model_id=version["model_id"],
        team=data.team,
        name=data.name,
        version=version["version"],
        environment=data.environment,
        previous_status=previous,
        status=data.status,
        overall_status=version["status"],
        report_id=event.id,
    ).model_dump()
    _emit(changes, event, messages.DEPLOYMENT_STATUS_CHANGED, payload, data.team, data.name, version["model_id"])
    return None


def _reject(
    changes: Changes,
    row: Document,
    event: CloudEvent,
    reason: str,
    message: str,
    data: messages.DeploymentStatusReported | None,
) -> None:
    """Record a refused report; ``data`` is given only when the sender may report on its model."""
    team = data.team if data else row["reporter_team"]
    name = data.name if data else None
    row |= {"outcome": "rejected", "reason": reason, "message": message}
    row.setdefault("version_id", version_id(data.team, data.name, data.version) if data else None)
    changes.history.append(row)
    payload = messages.CommandRejected(
        command_id=event.id,
        command_type=event.type,
        reason=reason,
        message=message,
        team=team,
        name=name,
    ).model_dump()
    _emit(changes, event, messages.COMMAND_REJECTED, payload, team, name, None)


def _emit(
    changes: Changes,
    cause: CloudEvent,
    event_type: str,
    data: dict[str, Any],
    team: str | None,
    name: str | None,
    model: str | None,
) -> None:
    key = f"{team}/{name}" if team and name else (team or ANONYMOUS)
    event = CloudEvent(
        source=SOURCE,
        type=event_type,
        subject=key,
        correlation_id=cause.correlation_id,
        causation_id=cause.id,
        data=data,
    )
    derived = model_id(team, name) if team and name else None
    changes.outbox.append(outbox_row(event, key=key, team=team, model_id=model or derived))
