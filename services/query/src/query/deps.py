"""The dependencies of the read routes, resolved per request from what ``build_app`` put on ``app.state``."""

from typing import Annotated

from fastapi import Depends, Query, Request

from query.api.lookup import Lookup
from shared.chassis.http_auth import requires
from shared.chassis.problems import Problem, documented, keyed_route_refusals
from shared.contract import catalog
from shared.contract.auth import Principal

Slug = Annotated[str, Query(pattern=catalog.SLUG_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=catalog.MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=2048)]
DeploymentStatus = Annotated[str | None, Query(max_length=32)]
Environment = Annotated[str | None, Query(pattern=catalog.SLUG_PATTERN)]


# Every read route may refuse the caller; lists and lookups also refuse a bad query string.
REFUSALS = keyed_route_refusals()
INVALID, NOT_FOUND = documented("invalid"), documented("not_found")


Caller = Annotated[Principal, Depends(requires("models:read"))]


async def lookup(request: Request, caller: Caller) -> Lookup:
    """The reads of the caller, limited to what ``app.state.visible_to`` lets it see."""
    state = request.app.state
    return Lookup(state.reads, state.visible_to(caller))


Visible = Annotated[Lookup, Depends(lookup)]


def checked_status(status: str | None) -> str | None:
    """``status`` if it is a deployment status (or absent), else the invalid problem."""
    if status and status not in catalog.DEPLOYMENT_STATUSES:
        raise Problem("invalid", f"status must be one of {', '.join(catalog.DEPLOYMENT_STATUSES)}")
    return status
