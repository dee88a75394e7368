"""Registration's event log and versions for the other services' bootstrap, rebuild and catch-up.

``GET /internal/v1/events?after=&limit=`` serves the outbox, in ``position`` order, as the very
CloudEvents the relay published on ``registry.events`` (``revision`` = position): a projection that
starts from nothing, or that finds the broker forgot what it had not read, reads it here.
``GET /internal/v1/versions/{team}/{name}/{version}`` answers the tracker about one version it has
not heard of. For the services (``X-Registry-Service-Token``) and platform admins; never behind the
gateway, left out of the public ``/openapi.json`` and documented in docs/operations.md.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field

from registration.storage import MODEL_VERSIONS, OUTBOX
from registry_contract.ids import model_id, version_id
from registry_contract.views import Approval
from shared.chassis.http_app import Service
from shared.chassis.http_auth import guard_of
from shared.chassis.http_params import SlugPath, VersionPath
from shared.chassis.problems import Problem, documented
from shared.chassis.verifiers import internal_token
from shared.outbox.reading import WindowedLog
from shared.outbox.rows import event_from_outbox

MAX_PAGE = 1000


class LoggedEvent(BaseModel):
    """One event of the log: the CloudEvent the relay published, ``revision`` its outbox position."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str | None
    correlation_id: str
    causation_id: str | None
    revision: int
    data: dict[str, Any]


class EventLogPage(BaseModel):
    """Events after the position asked for, oldest first."""

    items: list[LoggedEvent]
    next_after: int | None = Field(
        description="the after= of the next page when this one is full; null when the log has no more (for now)"
    )


class VersionKnown(BaseModel):
    """What the tracker needs to know of a version: that it exists (or was deleted), and its approval."""

    model_id: str
    version_id: str
    team: str
    name: str
    version: str
    approval: Approval
    deleted: bool
    provenance_verified: bool = Field(False, description="registered with a signature a team key verified")
    revision: int | None = Field(
        default=None,
        description="registration's revision of the model when it was read (its latest outbox position): "
        "events of the version at or below it are already reflected here",
    )


async def _service_or_platform_admin(
    request: Request,
    token: Annotated[str | None, Header(alias="X-Registry-Service-Token")] = None,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """Let in the registry's services (their credential) and platform admins (an API key)."""
    service: Service = request.app.state.service
    if token is not None and hmac.compare_digest(token.encode(), internal_token(service.settings).encode()):
        return
    if authorization is None and x_api_key is None:
        raise Problem("unauthenticated", "this route is for the registry's services and platform admins")
    guard = guard_of(request)
    caller = await guard(request, authorization, x_api_key)
    if not caller.is_platform_admin:
        guard.deny(request, caller, status=403, reason="not a platform admin")
        raise Problem("forbidden", "this route is for the registry's services and keys with platform:admin")


router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(_service_or_platform_admin)],
    responses=documented("unauthenticated", "forbidden"),
    include_in_schema=False,
)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.get("/events", responses=documented("invalid"))
async def events(
    request: Request,
    after: Annotated[int, Query(ge=0, lt=10**20, description="the position after which to read")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> EventLogPage:
    """The events registration published on ``registry.events`` after ``after``, by position."""
    # Rows the broker refused for good (parked) were never published: they are not in the log.
    log: WindowedLog = request.app.state.event_log
    rows = await log.rows_after(after, limit)
    items = [LoggedEvent.model_validate(event_from_outbox(row).model_dump(include=_LOGGED)) for row in rows]
    return EventLogPage(items=items, next_after=items[-1].revision if len(items) == limit else None)


_LOGGED = set(LoggedEvent.model_fields)


@router.get("/versions/{team}/{name}/{version}", responses=documented("not_found"))
async def version(team: SlugPath, name: SlugPath, version: VersionPath, request: Request) -> VersionKnown:
    """One version (a deleted one as ``deleted: true``), or 404 when it never existed."""
    try:
        vid = version_id(team, name, version)
    except ValueError:
        raise Problem("not_found", f"{team}/{name} has no version {version[:64]!r}") from None
    db = _service(request).db
    # Read before the version, so the answer reflects at least every event up to this revision.
    mid = model_id(team, name)
    latest = await db[OUTBOX].find_one({"model_id": mid}, {"position": 1}, sort=[("position", -1)])
    # A deleted version's tombstone stands in its place: the number stays taken.
    stored = await db[MODEL_VERSIONS].find_one(
        {"_id": vid}, {"version": 1, "approval": 1, "deleted": 1, "provenance.verified": 1}
    )
    if stored is None:
        raise Problem("not_found", f"{team}/{name} has no version {version[:64]!r}")
    return VersionKnown(
        model_id=mid,
        version_id=vid,
        team=team,
        name=name,
        version=stored["version"],
        approval=Approval.model_validate(stored.get("approval") or {}),
        deleted=bool(stored.get("deleted")),
        provenance_verified=bool((stored.get("provenance") or {}).get("verified")),
        revision=int(latest["position"]) if latest and latest.get("position") is not None else None,
    )
