"""What one deployment report writes: its history row and the outbox row of its event (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from deploy_tracker.reports import Moved, Refused, Report, Verdict
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.ids import ANONYMOUS, model_id
from registry_contract.views import DeploymentReportPublic
from shared.outbox.rows import outbox_row

SOURCE = "/registry/deploy-tracker"


@dataclass(frozen=True)
class Stamp:
    """When a batch recorded a report, and the report's place in the order of history."""

    at: datetime
    position: int


def record(report: Report, stamp: Stamp, verdict: Verdict) -> Document:
    """The history row of one report, applied or not; a refused claim stays the sender's, never the model's."""
    event, principal = report.event, report.principal
    row: Document = {
        "_id": report.key,
        "report_id": event.id,
        "received_at": stamp.at,
        "position": stamp.position,
        "correlation_id": event.correlation_id,
        "reporter": principal.key_id if principal else None,
        "reporter_team": report.sender_team,
    }
    if isinstance(verdict, Refused) and verdict.claimed is not None:
        claimed = verdict.claimed
        row["claimed"] = {"team": claimed.team, "name": claimed.name, "version": claimed.version}
    if verdict.data is not None:
        row |= verdict.data.model_dump(mode="python") | {"occurred_at": verdict.data.occurred_at.astimezone(UTC)}
    row["version_id"] = verdict.version_id
    if verdict.version is not None:
        row |= {"model_id": verdict.version["model_id"], "previous_status": verdict.previous}
    if isinstance(verdict, Refused):
        return row | {"outcome": "rejected", "reason": verdict.why.reason, "message": verdict.why.message}
    # A pipeline that reports only its end state skipped ``deploying``: say so rather than invent one.
    return row | {"outcome": verdict.outcome, "skipped_deploying": verdict.skipped_deploying}


def emit_rejection(report: Report, refused: Refused) -> Document:
    """The outbox row of a refusal: filed under the model when the sender may report on it, else the sender's team."""
    data = refused.data
    team, name = (data.team, data.name) if data is not None else (report.sender_team, None)
    model = model_id(data.team, data.name) if data is not None else None
    payload = messages.CommandRejected(
        command_id=report.event.id,
        command_type=report.event.type,
        reason=refused.why.reason,
        message=refused.why.message,
        team=team,
        name=name,
    )
    return _outbox(report.event, messages.COMMAND_REJECTED, payload, model)


def emit_report_recorded(report: Report, history: Document) -> Document | None:
    """The outbox row of ``deployment_report_recorded`` for a report filed under a model (``None``: not filed)."""
    if history.get("model_id") is None:
        return None
    public = DeploymentReportPublic.of(history).model_dump(mode="json")
    payload = messages.DeploymentReportRecorded.model_validate(
        public | {"version_id": history["version_id"], "position": history["position"]}
    )
    return _outbox(report.event, messages.DEPLOYMENT_REPORT_RECORDED, payload, history["model_id"])


def emit_status_change(report: Report, moved: Moved, status: Document) -> Document:
    """The outbox row of ``deployment_status_changed`` for an applied report, with the environment's new state."""
    data, version = moved.data, moved.version
    payload = messages.DeploymentStatusChanged(
        model_id=version["model_id"],
        team=data.team,
        name=data.name,
        version=version["version"],
        environment=data.environment,
        previous_status=moved.previous,
        status=data.status,
        overall_status=status["status"],
        report_id=report.event.id,
        environment_state=status["environments"][data.environment],
    )
    return _outbox(report.event, messages.DEPLOYMENT_STATUS_CHANGED, payload, version["model_id"])


def _outbox(
    cause: CloudEvent,
    event_type: str,
    payload: messages.CommandRejected | messages.DeploymentStatusChanged | messages.DeploymentReportRecorded,
    model: str | None,
) -> Document:
    """The outbox row of the event ``cause`` led to, keyed by its model, else its team, else nobody."""
    team, name = payload.team, payload.name
    key = f"{team}/{name}" if team and name else (team or ANONYMOUS)
    event = CloudEvent(
        source=SOURCE,
        type=event_type,
        subject=key,
        correlation_id=cause.correlation_id,
        causation_id=cause.id,
        data=payload.model_dump(mode="json"),
    )
    return outbox_row(event, key=key, team=team, model_id=model)
