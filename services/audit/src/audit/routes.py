"""``GET /v1/audit`` (filtered, paginated, team-scoped) and ``GET /v1/audit/verify``."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pymongo.asynchronous.database import AsyncDatabase

from audit.team_verify import DEFAULT_TEAM_VERIFY, MAX_TEAM_VERIFY, verify_team
from shared import catalog
from shared.auditchain import CHAINED_FIELDS, ChainKey, verify
from shared.auth import Principal
from shared.http_auth import Guard
from shared.mongo import AUDIT_LOG, Document
from shared.problems import Problem
from shared.sortkeys import time_key

_PUBLIC = (*CHAINED_FIELDS, "hash", "prev_hash")


def _public(doc: Document) -> dict[str, Any]:
    body = {("id" if k == "_id" else k): doc.get(k) for k in _PUBLIC}
    body["received_at"] = doc["received_at"].isoformat().replace("+00:00", "Z")
    return body


def build_router(*, db: AsyncDatabase[Document], guard: Guard, key: ChainKey) -> APIRouter:
    """The audit API; callers need ``audit:read`` and see their own team's entries."""
    router = APIRouter(prefix="/v1/audit", tags=["audit"])
    Reader = Annotated[Principal, Depends(guard.requiring("audit:read"))]
    log = db[AUDIT_LOG]

    @router.get("")
    async def list_entries(
        caller: Reader,
        request: Request,
        team: Annotated[str | None, Query(pattern=catalog.SLUG_PATTERN)] = None,
        model: Annotated[str | None, Query(max_length=130)] = None,
        type: Annotated[str | None, Query(max_length=128)] = None,
        principal: Annotated[str | None, Query(max_length=64)] = None,
        correlation_id: Annotated[str | None, Query(max_length=128)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=catalog.MAX_PAGE_SIZE)] = catalog.DEFAULT_PAGE_SIZE,
        cursor: Annotated[str | None, Query(max_length=300)] = None,
    ) -> dict[str, Any]:
        """Entries newest first; ``next_cursor`` continues."""
        if not caller.is_platform_admin:
            if team and team != caller.team:
                guard.deny(request, caller, status=403, reason="other team's audit", resource_team=team)
                raise Problem(
                    403,
                    "Forbidden",
                    "you can read only your own team's audit entries",
                    type_="urn:registry:problem:forbidden",
                )
            team = caller.team
        query: dict[str, Any] = {}
        for field, value in (
            ("team", team),
            ("model", model),
            ("type", type),
            ("actor", principal),
            ("correlation_id", correlation_id),
        ):
            if value:
                query[field] = value
        bounds: dict[str, str] = {}
        if since:
            bounds["$gte"] = time_key(since, "")
        if until:
            bounds["$lt"] = time_key(until, "")
        if cursor:
            bounds["$lt"] = min(cursor, bounds.get("$lt", cursor))
        if bounds:
            query["ts_key"] = bounds
        docs = await log.find(query).sort("ts_key", -1).limit(limit + 1).to_list()
        next_cursor = docs[limit - 1]["ts_key"] if len(docs) > limit else None
        return {"items": [_public(doc) for doc in docs[:limit]], "next_cursor": next_cursor}

    @router.get("/verify")
    async def verify_chains(
        caller: Reader,
        full: bool = False,
        limit: Annotated[int, Query(ge=1, le=MAX_TEAM_VERIFY)] = DEFAULT_TEAM_VERIFY,
    ) -> dict[str, Any]:
        """Verify the audit log: ``ok`` or the first broken link.

        A platform admin verifies every chain, from the last verified point (``full=true``: from
        the start). A team key verifies its own team's newest ``limit`` entries: each one's hash
        and its links to its neighbours, without seeing other teams' entries.
        """
        if caller.is_platform_admin:
            return (await verify(db, key, full=full)).public()
        return (await verify_team(db, key, team=caller.team, limit=limit)).public()

    return router
