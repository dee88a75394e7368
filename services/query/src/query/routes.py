"""HTTP adapter of the read API (DESIGN §3, query service)."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from query.pagination import SortSpec
from query.reads import MODEL_SORTS, ModelFilters, Page, Reads
from shared import catalog
from shared.auth import Principal
from shared.http_auth import Guard
from shared.http_params import IdPath, SlugPath
from shared.ids import model_id, version_doc_id
from shared.mongo import Document
from shared.problems import Problem
from shared.versioning import parse_range, precedence_key
from shared.views import model_public, version_public

Slug = Annotated[str, Query(pattern=catalog.SLUG_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=catalog.MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=2048)]


def _page(page: Page, render: Callable[[Document], dict[str, Any]]) -> dict[str, Any]:
    return {"items": [render(doc) for doc in page.items], "next_cursor": page.next_cursor, **page.extra}


def _not_found(what: str) -> Problem:
    return Problem(
        404,
        "Not found",
        f"{what} does not exist or is not visible to you",
        type_="urn:registry:problem:not_found",
    )


def _event_public(doc: Document) -> dict[str, Any]:
    return {
        "event_id": doc["_id"],
        "type": doc["type"],
        "time": doc["time"].isoformat().replace("+00:00", "Z"),
        "correlation_id": doc.get("correlation_id"),
        "causation_id": doc.get("causation_id"),
        "data": doc["data"],
    }


_DEPLOYMENT_INTERNAL = ("_id", "report_id", "version_id", "position", "reporter_team", "claimed")


def _deployment_public(doc: Document) -> dict[str, Any]:
    public = {k: v for k, v in doc.items() if k not in _DEPLOYMENT_INTERNAL}
    return public | {"id": doc.get("report_id", doc["_id"])}


def build_router(
    *,
    reads: Reads,
    guard: Guard,
    visible: Callable[[Principal], dict[str, Any]],
    service_version: str,
) -> APIRouter:
    """Every read route; ``visible`` turns the caller into the filter of what it may see."""
    router = APIRouter(prefix="/v1")
    Caller = Annotated[Principal, Depends(guard.requiring("models:read"))]

    def hidden(model: Document | None, caller: Principal, what: str) -> Document:
        # A model the caller may not see is answered exactly like one that does not exist: same
        # status and body, and no access event or counter either, since the caller can read its
        # own team's audit log and anyone can read /metrics (found: both told the two apart).
        if model is not None and _matches(model, visible(caller)):
            return model
        raise _not_found(what)

    async def find_model(team: str, name: str, caller: Principal) -> Document:
        return hidden(await reads.model(team, name), caller, f"model {team}/{name}")

    async def find_version(team: str, name: str, version: str, caller: Principal) -> Document:
        if version == "latest":
            model = await find_model(team, name, caller)
            found = await reads.latest_version(model)
            if found is None:
                raise _not_found(f"a non-prerelease version of {team}/{name}")
            return found
        try:
            key = precedence_key(version)
        except ValueError:
            raise Problem(
                422,
                "Invalid version",
                f"{version!r} is not a SemVer 2.0 version or 'latest'",
                type_="urn:registry:problem:invalid",
            ) from None
        # Both ids derive from the path, so the model (for visibility) and the version are
        # fetched concurrently: one round trip of latency instead of two.
        model_doc, found = await asyncio.gather(
            reads.model(team, name), reads.version_by_id(version_doc_id(model_id(team, name), key))
        )
        model = hidden(model_doc, caller, f"model {team}/{name}")
        if found is None or found["model_id"] != model["_id"]:
            raise _not_found(f"version {version} of {team}/{name}")
        return found

    async def list_models(
        caller: Principal, filters: ModelFilters, sort: str, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        if filters.status and filters.status not in catalog.DEPLOYMENT_STATUSES:
            raise Problem(
                422,
                "Invalid filter",
                f"status must be one of {', '.join(catalog.DEPLOYMENT_STATUSES)}",
                type_="urn:registry:problem:invalid",
            )
        bad_tags = [tag for tag in filters.tags if ":" not in tag]
        if bad_tags:
            raise Problem(
                422,
                "Invalid filter",
                f"tag filters must look like key:value, got {bad_tags}",
                type_="urn:registry:problem:invalid",
            )
        page = await reads.list_models(
            filters,
            visible=visible(caller),
            sort=SortSpec.parse(sort, MODEL_SORTS),
            limit=limit,
            cursor=cursor,
        )
        return _page(page, model_public)

    @router.get("/models", tags=["models"])
    async def get_models(
        caller: Caller,
        team: Slug | None = None,
        framework: Annotated[str | None, Query(max_length=64)] = None,
        status: Annotated[str | None, Query(max_length=32)] = None,
        environment: Annotated[str | None, Query(pattern=catalog.SLUG_PATTERN)] = None,
        deployment_target: Annotated[str | None, Query(max_length=64)] = None,
        tag: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 (FastAPI copies defaults)
        name_prefix: Annotated[str | None, Query(max_length=63)] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        sort: Annotated[str, Query(max_length=32)] = "-created_at",
        limit: Limit = catalog.DEFAULT_PAGE_SIZE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Models you can see, filtered and paginated (``next_cursor`` until the end)."""
        filters = ModelFilters(
            team=team,
            framework=framework,
            status=status,
            environment=environment,
            deployment_target=deployment_target,
            tags=tuple(tag),
            name_prefix=name_prefix,
            created_after=created_after,
            created_before=created_before,
        )
        return await list_models(caller, filters, sort, limit, cursor)

    @router.get("/teams/{team}/models", tags=["models"])
    async def get_team_models(
        team: SlugPath,
        caller: Caller,
        sort: Annotated[str, Query(max_length=32)] = "-created_at",
        limit: Limit = catalog.DEFAULT_PAGE_SIZE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """One team's models."""
        return await list_models(caller, ModelFilters(team=team), sort, limit, cursor)

    @router.get("/models/id/{model_id}", tags=["models"])
    async def get_model_by_id(model_id: IdPath, caller: Caller) -> dict[str, Any]:
        """A model by its stable id."""
        return model_public(hidden(await reads.model_by_id(model_id), caller, f"model {model_id}"))

    @router.get("/models/{team}/{name}", tags=["models"])
    async def get_model(team: SlugPath, name: SlugPath, caller: Caller) -> dict[str, Any]:
        """A model and its headline (latest) version fields."""
        return model_public(await find_model(team, name, caller))

    @router.get("/models/{team}/{name}/versions", tags=["versions"])
    async def get_versions(
        team: SlugPath,
        name: SlugPath,
        caller: Caller,
        range: Annotated[str | None, Query(max_length=256, description="e.g. >=1.2.0,<2.0.0")] = None,
        include_prerelease: bool = False,
        status: Annotated[str | None, Query(max_length=32)] = None,
        environment: Annotated[str | None, Query(pattern=catalog.SLUG_PATTERN)] = None,
        limit: Limit = catalog.DEFAULT_PAGE_SIZE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Versions by SemVer precedence, newest first; ``status``/``environment`` filter by deployment."""
        if status and status not in catalog.DEPLOYMENT_STATUSES:
            raise Problem(
                422,
                "Invalid filter",
                f"status must be one of {', '.join(catalog.DEPLOYMENT_STATUSES)}",
                type_="urn:registry:problem:invalid",
            )
        model = await find_model(team, name, caller)
        try:
            version_range = parse_range(range) if range else None
        except ValueError as exc:
            raise Problem(422, "Invalid range", str(exc), type_="urn:registry:problem:invalid") from None
        page = await reads.list_versions(
            model,
            version_range=version_range,
            include_prerelease=include_prerelease,
            limit=limit,
            cursor=cursor,
            status=status,
            environment=environment,
        )
        return _page(page, version_public)

    @router.get("/models/{team}/{name}/versions/{version}", tags=["versions"])
    async def get_version(team: SlugPath, name: SlugPath, version: str, caller: Caller) -> dict[str, Any]:
        """One version, or ``latest`` (the highest non-prerelease)."""
        return version_public(await find_version(team, name, version, caller))

    @router.get("/models/{team}/{name}/history", tags=["models"])
    async def get_history(
        team: SlugPath,
        name: SlugPath,
        caller: Caller,
        limit: Limit = catalog.MAX_PAGE_SIZE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Every change of the model, oldest first."""
        page = await reads.history(await find_model(team, name, caller), limit=limit, cursor=cursor)
        return _page(page, _event_public)

    @router.get("/models/{team}/{name}/versions/{version}/deployments", tags=["deployments"])
    async def get_deployments(
        team: SlugPath,
        name: SlugPath,
        version: str,
        caller: Caller,
        limit: Limit = catalog.DEFAULT_PAGE_SIZE,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Current status per environment and the report history of a version."""
        found = await find_version(team, name, version, caller)
        page = await reads.deployment_history(found, limit=limit, cursor=cursor)
        page.extra = {
            "status": found.get("status", "registered"),
            "environments": found.get("environments", {}),
        }
        return _page(page, _deployment_public)

    @router.get("/meta", tags=["meta"])
    async def get_meta(_: Caller) -> dict[str, Any]:
        """Enumerations and limits of the contract."""
        return {
            "service_version": service_version,
            "frameworks": list(catalog.FRAMEWORKS),
            "deployment_targets": list(catalog.DEPLOYMENT_TARGETS),
            "lifecycle_states": list(catalog.LIFECYCLE_STATES),
            "deployment_statuses": list(catalog.DEPLOYMENT_STATUSES),
            "slug_pattern": catalog.SLUG_PATTERN,
            "semver": "2.0.0",
            "limits": {
                "max_payload_bytes": catalog.MAX_PAYLOAD_BYTES,
                "max_page_size": catalog.MAX_PAGE_SIZE,
                "default_page_size": catalog.DEFAULT_PAGE_SIZE,
                "max_tags": catalog.MAX_TAGS,
            },
            "model_sorts": [*MODEL_SORTS, *(f"-{s}" for s in MODEL_SORTS)],
        }

    return router


def _matches(doc: Document, visible: dict[str, Any]) -> bool:
    """Whether ``doc`` is inside the caller's visibility filter (simple equality/``$in`` forms)."""
    for key, condition in visible.items():
        value = doc.get(key)
        values = value if isinstance(value, list) else [value]
        if condition not in values:
            return False
    return True
