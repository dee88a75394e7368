"""HTTP bridge for pipelines that cannot speak Kafka: ``POST /v1/deployments/events`` → ``deploy.events``."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from shared import correlation, messages
from shared.auth import Principal
from shared.envelope import CloudEvent
from shared.http_auth import Guard
from shared.problems import Problem
from shared.signing import EventSigner

SOURCE = "/registry/deploy-tracker/http"


def build_router(*, broker: KafkaBroker, topic: str, guard: Guard, signer: EventSigner) -> APIRouter:
    """The bridge; the same validation as the consumer, then a 202 with the event id.

    The caller's key never travels on: the report is published under the service's signature
    with the caller's key id (``ce_principal``), which the tracker trusts only when signed.
    """
    router = APIRouter(prefix="/v1/deployments", tags=["deployments"])
    Reporter = Annotated[Principal, Depends(guard.requiring("deployments:write"))]

    @router.post(
        "/events",
        status_code=202,
        openapi_extra={
            "requestBody": {
                "content": {"application/json": {"schema": messages.DeploymentStatusReported.model_json_schema()}},
                "required": True,
            }
        },
    )
    async def report(
        caller: Reporter,
        request: Request,
        body: Annotated[Any, Body()],
    ) -> dict[str, Any]:
        """Publish a deployment report; the tracker applies it asynchronously."""
        try:
            data = messages.DeploymentStatusReported.model_validate(body)
        except ValidationError as exc:
            errors = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise Problem(
                422,
                "Invalid report",
                "the report does not match the schema",
                errors=errors,
                type_="urn:registry:problem:invalid",
            ) from None
        if not caller.acts_for(data.team):
            guard.deny(request, caller, status=403, reason="other team's model", resource_team=data.team)
            raise Problem(
                403,
                "Forbidden",
                f"this key may not report deployments of team {data.team!r}",
                type_="urn:registry:problem:forbidden",
            )
        event = CloudEvent(
            source=SOURCE,
            type=messages.DEPLOY_STATUS_REPORTED,
            subject=f"{data.team}/{data.name}",
            correlation_id=correlation.current() or correlation.new_id(),
            data=data.model_dump(mode="json"),
        )
        value, headers = signer.encode(event, acting_for=caller.key_id)
        await broker.publish(value, topic=topic, key=f"{data.team}/{data.name}".encode(), headers=headers)
        return {"event_id": event.id, "status": "accepted"}

    return router
