"""``GET /v1/assistant/search``: ranked free-text search with snippets and facets, within what the caller reads."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from query.api.pagination import pack, unpack
from query.deps import (
    CONSISTENT,
    INVALID,
    NOT_REACHED,
    REFUSALS,
    UNAVAILABLE,
    Caller,
    Cursor,
    Environment,
    Limit,
    Slug,
    checked_status,
)
from query.search.index import SearchIndex, SearchRequest
from query.search.parser import InvalidQuery
from query.search.queries import SearchFilters
from registry_contract import catalog
from registry_contract.assistant_views import SearchPage
from shared.chassis.problems import Problem, documented

router = APIRouter(
    prefix="/v1/assistant", tags=["assistant"], responses=REFUSALS | UNAVAILABLE, dependencies=CONSISTENT
)
MAX_QUERY_CHARS = 512
RETRY_AFTER_SECONDS = 5  # about a small index's rebuild; the supervisor's settle time bounds a restart's
Unavailable = Callable[[], str | None]  # why search cannot answer now, or None
CaughtUp = Callable[[set[str], float], Awaitable[bool]]  # whether these models' changes are indexed, waiting a while


@router.get("/search", response_model=SearchPage, responses=INVALID | documented("unavailable"))
async def search(
    request: Request,
    caller: Caller,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
    team: Slug | None = None,
    framework: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    environment: Environment = None,
    deployment_target: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[list[str], Query(max_length=catalog.MAX_TAGS)] = [],  # noqa: B006 (FastAPI copies it)
    name_prefix: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Response:
    """Search model names, descriptions, documentation, tags, frameworks, targets, metrics and statuses.

    ``q`` takes words, ``"quoted phrases"`` and ``field:value`` terms (``framework:xgboost``,
    ``tag:owner=alice``, ``status:deployed``, ``env:prod``, ``team:fraud``); longer words tolerate
    typos and the last word matches as a prefix (search as you type).

    Answers 503 ``unavailable`` with ``Retry-After`` while the index is being built, or its
    projection is down: an index that no longer follows the events could still show a model to a
    team it was unshared from. With ``X-Registry-Consistency`` it also waits until the index holds
    those writes.
    """
    unavailable: Unavailable = request.app.state.search_unavailable
    if (why := unavailable()) is not None:
        raise Problem("unavailable", why, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if tokens := getattr(request.state, "consistency_tokens", None):
        caught_up: CaughtUp = request.app.state.search_caught_up
        if not await caught_up({token.model_id for token in tokens}, request.app.state.consistency_wait_seconds):
            raise Problem("unavailable", NOT_REACHED, headers={"Retry-After": "1"})
    filters = SearchFilters(
        team=team,
        framework=framework,
        deployment_target=deployment_target,
        tags=tuple(tag),
        name_prefix=name_prefix,
        status=checked_status(status),
        environment=environment,
    )
    scope = _scope(q, filters)
    offset = _offset(cursor, scope)
    readers = None if caller.is_platform_admin else frozenset({caller.team})
    index: SearchIndex = request.app.state.search_index
    wanted = SearchRequest(q, readers, filters, limit, offset)
    # A result computed since the index last committed is served from the loop; a search runs in a thread.
    cached = index.cached(wanted)
    found = cached if cached is not None else await asyncio.to_thread(index.search, wanted)
    if isinstance(found, InvalidQuery):
        raise Problem("invalid", found.message)
    more = offset + len(found.items) < found.total
    rest = {
        "total": found.total,
        "facets": found.facets,
        "next_cursor": _cursor(offset + len(found.items), scope) if more and found.items else None,
        "relaxed": found.relaxed,
    }
    return Response(_page_json(found.items_json, rest), media_type="application/json")


def _page_json(items: list[bytes], rest: dict[str, object]) -> bytes:
    """A :class:`SearchPage` as JSON, from hits already serialized."""
    tail = json.dumps(rest, separators=(",", ":")).encode()
    return b'{"items":[' + b",".join(items) + b"]," + tail[1:]


def _scope(q: str, filters: SearchFilters) -> str:
    raw = json.dumps([q, filters.__dict__], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _cursor(offset: int, scope: str) -> str:
    return pack({"o": offset, "q": scope})


def _offset(cursor: str | None, scope: str) -> int:
    if not cursor:
        return 0
    try:
        raw = unpack(cursor)
        if raw["q"] != scope or not isinstance(raw["o"], int) or raw["o"] < 0:
            raise ValueError("it belongs to another search")
        return int(raw["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Problem("invalid", f"cursor is not valid for this search: {exc}") from None
