"""The tracker's event log for the read side's bootstrap, rebuild and catch-up (never behind the gateway).

``GET /internal/v1/events?after=<position>&limit=<n>`` answers the events the tracker published on
``registry.events``, each exactly as the relay published it (with ``revision`` = its outbox row's
``position``), in position order. Only the registry's services (``X-Registry-Service-Token``) and
platform admins read it; it is left out of the public ``/openapi.json`` (docs/operations.md).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field

from registry_contract.documents import Document
from shared.chassis.http_auth import guard_of
from shared.chassis.problems import Problem, documented
from shared.chassis.settings import CommonSettings
from shared.chassis.verifiers import internal_token

MAX_EVENTS = 1000


class LoggedEvent(BaseModel):
    """One event of the log: the CloudEvent published for an outbox row, ``revision`` its position."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    revision: int
    data: dict[str, Any]

    @classmethod
    def of(cls, row: Document) -> LoggedEvent:
        """The event of one outbox row."""
        return cls(
            id=row["_id"],
            type=row["type"],
            source=row["source"],
            time=row["time"],
            subject=row.get("subject"),
            correlation_id=row.get("correlation_id"),
            causation_id=row.get("causation_id"),
            revision=row["position"],
            data=row["data"],
        )


class EventLogPage(BaseModel):
    """A page of the log, and where the next one starts (``null``: this is its end for now)."""

    items: list[LoggedEvent]
    next_after: int | None = Field(description="pass as `after` for the next page; null at the end")


class EventLog(Protocol):
    """Where the route reads the log (the tracker's repository)."""

    async def events_after(self, after: int, limit: int) -> list[Document]:
        """Outbox rows after ``after``, in position order."""
        ...


async def _from_a_service_or_admin(
    request: Request,
    token: Annotated[str | None, Header(alias="X-Registry-Service-Token")] = None,
) -> None:
    """The services' credential, or a platform admin's API key (which is rate limited and recorded as usual)."""
    settings: CommonSettings = request.app.state.settings
    if token is not None:
        if hmac.compare_digest(token.encode(), internal_token(settings).encode()):
            return
        raise Problem("unauthenticated", "this route is for the registry's services")
    guard = guard_of(request)
    caller = guard.admit(request, await guard.authenticate(request))
    if not caller.is_platform_admin:
        guard.deny(request, caller, status=403, reason="internal event log")
        raise Problem("forbidden", "only the registry's services and keys with platform:admin read the event log")


router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(_from_a_service_or_admin)],
    responses=documented("unauthenticated", "forbidden"),
    include_in_schema=False,  # not the public API: documented in docs/operations.md
)


@router.get("/events")
async def events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = MAX_EVENTS,
) -> EventLogPage:
    """The events the tracker published after position ``after``, oldest first, at most ``limit``."""
    log: EventLog = request.app.state.event_log
    rows = await log.events_after(after, limit)
    items = [LoggedEvent.of(row) for row in rows]
    return EventLogPage(items=items, next_after=items[-1].revision if len(items) == limit else None)
