"""``POST /internal/v1/projection/rebuild``: the read model built again from nothing, from the owners' logs.

For operators (``registry projection rebuild``) and the services: the services' credential
(``X-Registry-Service-Token``) or a platform admin's API key. Left out of the public OpenAPI like
the other internal routes; documented in docs/operations.md.
"""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from query.projection.consumer import Projection, ProjectionTooLarge
from query.projection.owners import OwnerUnavailable
from shared.chassis.http_auth import guard_of
from shared.chassis.problems import Problem, documented
from shared.chassis.verifiers import internal_token


class RebuildResult(BaseModel):
    """What the rebuilt read model holds, and how many events each owner's log gave."""

    models: int
    versions: int
    events: dict[str, int] = Field(description="events read per owner: r (registration), d (deploy-tracker)")


async def _operator(
    request: Request,
    token: Annotated[str | None, Header(alias="X-Registry-Service-Token")] = None,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """The services' credential, or a platform admin's key (anything else: 401 or 403)."""
    expected = internal_token(request.app.state.service.settings)
    if token is not None and hmac.compare_digest(token.encode(), expected.encode()):
        return
    guard = guard_of(request)
    principal = await guard(request, authorization, x_api_key)
    if not principal.is_platform_admin:
        guard.deny(request, principal, status=403, reason="not a platform admin")
        raise Problem("forbidden", "rebuilding the read model takes a key with platform:admin")


router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(_operator)],
    responses=documented("unauthenticated", "forbidden", "unavailable"),
    include_in_schema=False,  # not the public API: documented in docs/operations.md
)


@router.post("/projection/rebuild")
async def rebuild(request: Request) -> RebuildResult:
    """Build the read model from every owner's whole event log, swap it in and persist it whole."""
    projection: Projection = request.app.state.projection
    try:
        found = await projection.rebuild()
    except OwnerUnavailable as exc:
        raise Problem("unavailable", f"an owner's event log could not be read: {exc}") from None
    except ProjectionTooLarge as exc:
        raise Problem("unavailable", str(exc)) from None
    return RebuildResult(models=found.models, versions=found.versions, events=found.events)
