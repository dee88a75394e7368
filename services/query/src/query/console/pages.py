"""The console's pages: search, a model, a team, a model's audit trail. Each reads the API as the caller."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from query.console import views
from query.console.web import PATH, Visit, checked_version, new_token, redirect, render, segment, visit
from registry_client.errors import RegistryError
from registry_client.json_api import JsonApi
from shared.chassis.http_params import SlugPath

router = APIRouter(prefix=PATH, include_in_schema=False)
Signed = Annotated[Visit, Depends(visit)]
Text = Annotated[str, Query(max_length=512)]
Filter = Annotated[str | None, Query(max_length=64)]
Cursor = Annotated[str | None, Query(max_length=2048)]
SEARCH_PAGE_SIZE = 20
VERSIONS_SHOWN = 50  # a page of the versions table, newest SemVer first; older ones a page further
DEPLOYMENTS_SHOWN = 50
HISTORY_SHOWN = 30  # entries of the model's timeline per page, newest first


@router.get("")
async def home() -> Response:
    """The console starts at search."""
    return redirect(f"{PATH}/search")


async def _search(
    visit: Visit, q: str, filters: dict[str, str], cursor: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    params: dict[str, str | int | None] = {"q": q, "limit": SEARCH_PAGE_SIZE, "cursor": cursor, **filters}
    try:
        return await visit.reads.get("/v1/assistant/search", params), None
    except RegistryError as exc:
        return None, exc.explanation


def _search_context(
    q: str, filters: dict[str, str], found: dict[str, Any] | None, problem: str | None
) -> dict[str, Any]:
    return {
        "q": q,
        "filters": filters,
        "found": found,
        "problem": problem,
        "facets": views.facet_links(found["facets"], filters) if found else [],
    }


async def searched(
    visit: Signed,
    q: Text = "",
    framework: Filter = None,
    status: Filter = None,
    team: Filter = None,
    environment: Filter = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The search a page or its results part shows: the API's answer (or its refusal) and the facets."""
    chosen = {"framework": framework, "status": status, "team": team, "environment": environment}
    filters = {name: value for name, value in chosen.items() if value}
    found, problem = await _search(visit, q, filters, cursor)
    return _search_context(q, filters, found, problem)


Searched = Annotated[dict[str, Any], Depends(searched)]


@router.get("/search", response_class=HTMLResponse)
async def search_page(request: Request, visit: Signed, context: Searched) -> HTMLResponse:
    """The search box, facets and the first page of results (live as you type, with console.js)."""
    return render(request, "search.html", context, visit=visit)


@router.get("/search/results", response_class=HTMLResponse)
async def search_results(request: Request, visit: Signed, context: Searched) -> HTMLResponse:
    """Only the facets and results of a search: what the page's script swaps in as the user types."""
    return render(request, "_results.html", context, visit=visit)


async def _optional(api: JsonApi, path: str, params: dict[str, str | int | None] | None = None) -> Any:
    """A read whose refusal only leaves its part of the page empty (shares of a model one only reads)."""
    try:
        return await api.get(path, params)
    except RegistryError as exc:
        if exc.status in (403, 404):
            return None
        raise


@router.get("/models/{team}/{name}", response_class=HTMLResponse)
async def model_page(
    request: Request,
    visit: Signed,
    team: SlugPath,
    name: SlugPath,
    version: Annotated[str | None, Query(max_length=300)] = None,
    versions_cursor: Cursor = None,
    history_cursor: Cursor = None,
) -> HTMLResponse:
    """A model: metadata, versions, the chosen version's metrics, lineage and card, deployments, history, shares."""
    base = f"/v1/models/{segment(team)}/{segment(name)}"
    if version:
        checked_version(version)
    owner = visit.principal.acts_for(team)
    # The chosen version's lineage is asked for at once (the latest's when none is chosen), so the
    # page costs one round of concurrent reads, not two.
    wanted = f"{base}/versions/{segment(version or 'latest')}/lineage"
    model, versions, deployments, shares, lineage, history = await asyncio.gather(
        visit.reads.get(base),
        visit.reads.get(
            f"{base}/versions",
            {"limit": VERSIONS_SHOWN, "include_prerelease": "true", "cursor": versions_cursor},
        ),
        # The timeline is of status changes: applied reports (refusals are in the audit trail).
        visit.reads.get(f"{base}/deployments", {"limit": DEPLOYMENTS_SHOWN, "outcome": "applied"}),
        _optional(visit.reads, f"{base}/shares") if owner else asyncio.sleep(0, None),
        _optional(visit.reads, wanted),
        # Alias moves, approvals, deletions and status changes, newest first (from a share's start for a reader).
        visit.reads.get(f"{base}/timeline", {"limit": HISTORY_SHOWN, "cursor": history_cursor}),
    )
    items: list[dict[str, Any]] = versions["items"]
    selected = _selected(items, version, model)
    if selected is None and version:
        selected = await visit.reads.get(f"{base}/versions/{segment(version)}")
    if selected is not None and (lineage is None or lineage["version"]["version"] != selected["version"]):
        lineage = await _optional(visit.reads, f"{base}/versions/{segment(selected['version'])}/lineage")
    previous = views.previous_of(items, selected) if selected else None
    context = {
        "model": model,
        "versions": items,
        "versions_next": versions.get("next_cursor"),
        "environments": views.environments_of(items),
        "selected": selected,
        "previous": previous,
        "metrics": views.compare_metrics(selected, previous) if selected else [],
        "lineage": lineage,
        "versions_cursor": versions_cursor,
        "timelines": views.timelines(deployments["items"]),
        "history": history["items"],
        "history_next": history.get("next_cursor"),
        "history_cursor": history_cursor,
        "shares": shares["items"] if shares else None,
        "owner": owner,
        "lifecycles": ("active", "deprecated", "archived"),
        "idempotency_key": new_token(),
    }
    return render(request, "model.html", context, visit=visit)


def _selected(versions: list[dict[str, Any]], wanted: str | None, model: dict[str, Any]) -> dict[str, Any] | None:
    """The version the page details: the one asked for, else the model's latest, else the newest listed."""
    target = wanted or model.get("latest_version")
    for candidate in versions:
        if candidate["version"] == target:
            return candidate
    return None if wanted else (versions[0] if versions else None)


@router.get("/models/{team}/{name}/card", response_class=HTMLResponse)
async def card_page(
    request: Request,
    visit: Signed,
    team: SlugPath,
    name: SlugPath,
    version: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """A model's card (of one version, else its latest), as the assistant API renders it."""
    base = f"{segment(team)}/{segment(name)}"
    model, card = await asyncio.gather(
        visit.reads.get(f"/v1/models/{base}"),
        visit.reads.get(f"/v1/assistant/models/{base}/card", {"version": version}),
    )
    return render(request, "card.html", {"model": model, "card": card, "version": version}, visit=visit)


@router.get("/models/{team}/{name}/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    visit: Signed,
    team: SlugPath,
    name: SlugPath,
    correlation_id: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """A model's audit entries, newest first; a correlation id shows one operation across every service."""
    model = await visit.reads.get(
        f"/v1/models/{segment(team)}/{segment(name)}"
    )  # a model the caller cannot read stays unknown
    params: dict[str, str | int | None] = {"team": team, "limit": 50, "cursor": cursor}
    params |= {"correlation_id": correlation_id} if correlation_id else {"model": f"{team}/{name}"}
    entries, problem = None, None
    if not visit.can("audit:read"):
        problem = "this key lacks the audit:read scope"
    else:
        try:
            entries = await visit.audit.get("/v1/audit", params)
        except RegistryError as exc:
            problem = exc.explanation
    context = {"model": model, "entries": entries, "problem": problem, "correlation_id": correlation_id}
    return render(request, "audit.html", context, visit=visit)


@router.get("/teams/{team}", response_class=HTMLResponse)
async def team_page(request: Request, visit: Signed, team: SlugPath, cursor: Cursor = None) -> HTMLResponse:
    """A team's models (those the caller reads), its recent registrations and deployments."""
    models, versions, deployments = await asyncio.gather(
        visit.reads.get(f"/v1/teams/{segment(team)}/models", {"sort": "-updated_at", "limit": 50, "cursor": cursor}),
        visit.reads.get(f"/v1/teams/{segment(team)}/versions", {"limit": 20}),
        visit.reads.get(f"/v1/teams/{segment(team)}/deployments", {"limit": 20}),
    )
    context = {
        "team": team,
        "models": models["items"],
        "models_next": models.get("next_cursor"),
        "recent_versions": versions["items"],
        "recent_deployments": deployments["items"],
    }
    return render(request, "team.html", context, visit=visit)
