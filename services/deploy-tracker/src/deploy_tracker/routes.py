"""HTTP bridge for pipelines that cannot speak Kafka: ``POST /v1/deployments/events`` → ``deploy.events``.

The caller's key never travels on: the report is published under the service's signature with the
caller's key id (``ce_principal``), which the tracker trusts only when signed.

A pipeline that must fail when its report is refused sends ``Prefer: wait=<s>`` (RFC 7240): the
bridge then waits, up to ``DEPLOY_TRACKER_REPORT_WAIT_MAX_SECONDS`` (30), for the tracker's outcome
and answers it — 200, or the refusal as problem+json — with ``Preference-Applied``; 202 as without
the preference when the wait runs out. An outcome filed under a model also carries
``X-Registry-Consistency: d.<model_id>.<revision>``, the tracker's revision of the model once the
report was recorded, which a read on the query service can wait for.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker

from deploy_tracker.outcomes import OutcomeWatch, requested_wait
from registry_contract import correlation, messages
from registry_contract.auth import Principal
from registry_contract.deployment_views import ReportAccepted, ReportOutcome
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.ids import sender_scoped
from shared.chassis.http_auth import guard_of, requires
from shared.chassis.problems import CATALOGUE, Problem, ProblemReason, documented, keyed_route_refusals
from shared.chassis.publishing import publish_event
from shared.chassis.signing import EventSigner

SOURCE = "/registry/deploy-tracker/http"
PREFERENCE_APPLIED = "Preference-Applied"
CONSISTENCY = "X-Registry-Consistency"
_REASONS: dict[str, ProblemReason] = {reason: reason for reason in CATALOGUE}


@dataclass(frozen=True)
class ReportBridge:
    """Where the bridge publishes reports (``app.state.report_bridge``, set by ``build_app``)."""

    broker: KafkaBroker
    topic: str
    signer: EventSigner

    async def publish(self, event: CloudEvent, *, key: str, acting_for: str) -> None:
        """Sign ``event`` as the service, naming the caller's key id, and publish it under ``key``."""
        await (await publish_event(self.broker, self.signer, event, topic=self.topic, key=key, acting_for=acting_for))


def refusal(row: Document, headers: dict[str, str]) -> Problem:
    """The problem of a report the tracker refused, with the reason and message it recorded."""
    reason = _REASONS.get(str(row.get("reason")), "invalid")
    return Problem(reason, str(row.get("message") or "the report was refused"), headers=headers)


def consistency_header(row: Document) -> dict[str, str]:
    """The consistency token of a recorded report: the tracker's revision of its model (none when not filed)."""
    model, revision = row.get("model_id"), row.get("revision")
    return {CONSISTENCY: f"d.{model}.{revision}"} if model is not None and revision is not None else {}


async def _bridge(request: Request) -> ReportBridge:
    bridge: ReportBridge = request.app.state.report_bridge
    return bridge


async def _outcome_watch(request: Request) -> OutcomeWatch:
    watch: OutcomeWatch = request.app.state.outcome_watch
    return watch


def _refusals_after_waiting() -> dict[int | str, dict[str, Any]]:
    """The refusals a waited-for report can come back with, beyond those of every keyed route."""
    responses = documented("not_found", "conflict")
    responses[409] = responses[409] | {
        "description": "Conflict (`conflict`: a transition the state machine forbids), Version not approved "
        "(`not_approved`: the environment requires an approved version) or Version not signed (`unsigned`: "
        "the environment requires verified provenance)"
    }
    return responses


Reporter = Annotated[Principal, Depends(requires("deployments:write"))]
Bridge = Annotated[ReportBridge, Depends(_bridge)]
Watch = Annotated[OutcomeWatch, Depends(_outcome_watch)]
Prefer = Annotated[
    list[str] | None,
    Header(
        description="RFC 7240; `wait=<seconds>` (capped by DEPLOY_TRACKER_REPORT_WAIT_MAX_SECONDS, 30) answers "
        "the tracker's outcome instead of 202: 200 when it took the report, the refusal's problem+json "
        "otherwise, 202 if the wait runs out"
    ),
]
router = APIRouter(
    prefix="/v1/deployments",
    tags=["deployments"],
    responses=keyed_route_refusals("invalid"),
)
_APPLIED_HEADER = {
    PREFERENCE_APPLIED: {"description": "`wait=<seconds>`: how long the bridge waited", "schema": {"type": "string"}}
}
_OUTCOME_HEADERS = _APPLIED_HEADER | {
    CONSISTENCY: {
        "description": "`d.<model_id>.<revision>`: the tracker's revision of the model once the report was "
        "recorded (its last event for the report); send it back to the query service to read this outcome. "
        "Present when the report was filed under a model",
        "schema": {"type": "string"},
    }
}
WAITED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ReportOutcome, "description": "The tracker's outcome (`Prefer: wait`)", "headers": _OUTCOME_HEADERS},
    202: {"description": "Published; without `Prefer: wait`, or when the wait ran out", "headers": _APPLIED_HEADER},
    **_refusals_after_waiting(),
}


@router.post("/events", status_code=202, response_model=ReportAccepted, responses=WAITED_RESPONSES)
async def report(
    data: messages.DeploymentStatusReported,
    caller: Reporter,
    bridge: Bridge,
    watch: Watch,
    request: Request,
    response: Response,
    prefer: Prefer = None,
) -> ReportAccepted | Response:
    """Publish a deployment report (validated as the consumer does); the tracker applies it asynchronously.

    With ``Prefer: wait=<s>`` the answer is the tracker's outcome when it comes within the wait.
    """
    if not caller.acts_for(data.team):
        guard_of(request).deny(request, caller, status=403, reason="other team's model", resource_team=data.team)
        raise Problem(
            "forbidden",
            f"this key may not report deployments of team {data.team!r}: "
            "a key reports for its own team (platform:admin for any)",
        )
    model = f"{data.team}/{data.name}"
    event = CloudEvent(
        source=SOURCE,
        type=messages.DEPLOY_STATUS_REPORTED,
        subject=model,
        correlation_id=correlation.current() or correlation.new_id(),
        data=data.model_dump(mode="json"),
    )
    await bridge.publish(event, key=model, acting_for=caller.key_id)
    accepted = ReportAccepted(event_id=event.id)
    wait = requested_wait(prefer or [])
    if wait is None:
        return accepted
    # The tracker files the report under the sender's team, as it files every report (Report.key).
    waited = await watch.wait(sender_scoped(caller.team, event.id), requested=wait)
    if waited is None:  # too many requests waiting: the preference is not applied
        return accepted
    applied = {PREFERENCE_APPLIED: f"wait={waited.seconds}"}
    if waited.row is None:  # the wait ran out: as without the preference, but saying it waited
        response.headers.update(applied)
        return accepted
    applied |= consistency_header(waited.row)
    if waited.row["outcome"] == "rejected":
        raise refusal(waited.row, applied)
    return JSONResponse(ReportOutcome.of(waited.row).model_dump(mode="json"), headers=applied)
