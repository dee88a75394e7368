"""HTTP bridge for pipelines that cannot speak Kafka: ``POST /v1/deployments/events`` → ``deploy.events``.

The caller's key never travels on: the report is published under the service's signature with the
caller's key id (``ce_principal``), which the tracker trusts only when signed.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, Field

from shared.chassis.http_auth import guard_of, requires
from shared.chassis.problems import Problem, keyed_route_refusals
from shared.chassis.publishing import publish_event
from shared.chassis.signing import EventSigner
from shared.contract import correlation, messages
from shared.contract.auth import Principal
from shared.contract.envelope import CloudEvent

SOURCE = "/registry/deploy-tracker/http"


@dataclass(frozen=True)
class ReportBridge:
    """Where the bridge publishes reports (``app.state.report_bridge``, set by ``build_app``)."""

    broker: KafkaBroker
    topic: str
    signer: EventSigner

    async def publish(self, event: CloudEvent, *, key: str, acting_for: str) -> None:
        """Sign ``event`` as the service, naming the caller's key id, and publish it under ``key``."""
        await (await publish_event(self.broker, self.signer, event, topic=self.topic, key=key, acting_for=acting_for))


class ReportAccepted(BaseModel):
    """A report published for the tracker, which applies it asynchronously."""

    event_id: str = Field(description="the CloudEvent id of the published report")
    status: Literal["accepted"] = "accepted"


def _bridge(request: Request) -> ReportBridge:
    bridge: ReportBridge = request.app.state.report_bridge
    return bridge


Reporter = Annotated[Principal, Depends(requires("deployments:write"))]
Bridge = Annotated[ReportBridge, Depends(_bridge)]
router = APIRouter(
    prefix="/v1/deployments",
    tags=["deployments"],
    responses=keyed_route_refusals("invalid"),
)


@router.post("/events", status_code=202)
async def report(
    data: messages.DeploymentStatusReported, caller: Reporter, bridge: Bridge, request: Request
) -> ReportAccepted:
    """Publish a deployment report (validated as the consumer does); the tracker applies it asynchronously."""
    if not caller.acts_for(data.team):
        guard_of(request).deny(request, caller, status=403, reason="other team's model", resource_team=data.team)
        raise Problem("forbidden", f"this key may not report deployments of team {data.team!r}")
    model = f"{data.team}/{data.name}"
    event = CloudEvent(
        source=SOURCE,
        type=messages.DEPLOY_STATUS_REPORTED,
        subject=model,
        correlation_id=correlation.current() or correlation.new_id(),
        data=data.model_dump(mode="json"),
    )
    await bridge.publish(event, key=model, acting_for=caller.key_id)
    return ReportAccepted(event_id=event.id)
