"""The dependencies of the read routes, resolved per request from what ``build_app`` put on ``app.state``."""

import re
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from query.api.lookup import Lookup
from query.projection.model import ReadModel, parse_tokens
from registry_contract import catalog
from registry_contract.auth import Principal
from shared.chassis.http_auth import requires
from shared.chassis.problems import Problem, documented, keyed_route_refusals

Slug = Annotated[str, Query(pattern=catalog.SLUG_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=catalog.MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=2048)]
DeploymentStatus = Annotated[str | None, Query(max_length=32)]
Environment = Annotated[str | None, Query(pattern=catalog.SLUG_PATTERN)]


# Every read route may refuse the caller; lists and lookups also refuse a bad query string.
REFUSALS = keyed_route_refusals()
INVALID, NOT_FOUND = documented("invalid"), documented("not_found")


Caller = Annotated[Principal, Depends(requires("models:read"))]
CONSISTENCY_HEADER = "X-Registry-Consistency"
NOT_REACHED = "the read model has not yet reached this write"


async def consistent(
    request: Request,
    caller: Caller,
    x_registry_consistency: Annotated[
        str | None,
        Header(
            max_length=512,
            description=(
                "consistency tokens of your writes (`r.<model id>.<revision>` or `d.<model id>.<revision>`, "
                "comma-separated, at most 8), as the write answered them: the read waits (at most "
                "QUERY_CONSISTENCY_WAIT_SECONDS) until this replica's read model has applied them, "
                "else answers 503 `unavailable` with Retry-After"
            ),
        ),
    ] = None,
) -> None:
    """Wait until the read model has reached the writes the caller names (read-your-writes), bounded.

    The caller is authenticated first, so nobody without a key can make a request wait. A token of
    a model the caller cannot read waits like any other: the read then answers its usual 404.
    """
    if not x_registry_consistency:
        return
    try:
        tokens = parse_tokens(x_registry_consistency)
    except ValueError as exc:
        raise Problem("invalid", f"{CONSISTENCY_HEADER}: {exc}") from None
    read_model: ReadModel = request.app.state.read_model
    if not await read_model.reached(tokens, request.app.state.consistency_wait_seconds):
        raise Problem("unavailable", NOT_REACHED, headers={"Retry-After": "1"})
    request.state.consistency_tokens = tokens  # search waits for its index too


# Every read router depends on it, so each read route documents the header and honours it.
CONSISTENT = [Depends(consistent)]
UNAVAILABLE = documented("unavailable")


async def lookup(request: Request, caller: Caller) -> Lookup:
    """The reads of the caller, limited to what ``app.state.visible_to`` lets it see."""
    state = request.app.state
    return Lookup(state.reads, state.visible_to(caller), state.past_states)


Visible = Annotated[Lookup, Depends(lookup)]
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+\- ][0-9]{2}:[0-9]{2})"
)
AS_OF = (
    "answer as things stood at this instant: an RFC 3339 time with an offset (`2026-03-01T02:14:00Z`, "
    "`2026-03-01T03:14:00+01:00`); a time without one is refused (422 `invalid`), a future time answers "
    "the current state; a model or version that did not exist then, or a time before your team's share "
    "of the model began, answers 404 `not_found`"
)


async def as_of_time(as_of: Annotated[str | None, Query(max_length=64, description=AS_OF)] = None) -> datetime | None:
    """The ``as_of`` query parameter as an aware datetime (``None`` without one), or the invalid problem."""
    if as_of is None:
        return None
    text = as_of.strip()
    if _RFC3339.fullmatch(text) is None:
        raise Problem(
            "invalid", f"as_of must be an RFC 3339 time with an offset, such as 2026-03-01T02:14:00Z: {text!r}"
        )
    if text[-6] == " ":  # a "+" an unencoded query string turned into a space
        text = f"{text[:-6]}+{text[-5:]}"
    text = text.upper().replace("Z", "+00:00")
    date, _, fraction = text[:-6].partition(".")
    try:
        return datetime.fromisoformat(date + (f".{fraction[:6]}" if fraction else "") + text[-6:])
    except ValueError:
        raise Problem("invalid", f"as_of is not a valid time: {as_of!r}") from None


AsOf = Annotated[datetime | None, Depends(as_of_time)]


def checked_status(status: str | None) -> str | None:
    """``status`` if it is a deployment status (or absent), else the invalid problem."""
    if status and status not in catalog.DEPLOYMENT_STATUSES:
        raise Problem("invalid", f"status must be one of {', '.join(catalog.DEPLOYMENT_STATUSES)}")
    return status
