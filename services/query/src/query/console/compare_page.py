"""The console's compare page: versions side by side with their differences, and charts of the model's history."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from query.console import charts, deployments_chart, views
from query.console.web import PATH, Visit, render, segment, visit
from registry_client.errors import RegistryError
from registry_contract import catalog
from registry_contract.compare_views import MAX_VERSION_CHARS, MAX_VERSIONS_CHARS
from shared.chassis.http_params import SlugPath

router = APIRouter(prefix=PATH, include_in_schema=False)
Signed = Annotated[Visit, Depends(visit)]
Asked = Annotated[str | None, Query(max_length=MAX_VERSIONS_CHARS)]
One = Annotated[str | None, Query(max_length=MAX_VERSION_CHARS)]
MAX_METRIC_CHARTS = 12  # one chart per metric of the compared versions, at most this many
HISTORY = catalog.MAX_PAGE_SIZE  # newest versions and applied deployment reports the charts read


@router.get("/models/{team}/{name}/compare", response_class=HTMLResponse)
async def compare_page(
    request: Request,
    visit: Signed,
    team: SlugPath,
    name: SlugPath,
    versions: Asked = None,
    base: One = None,
    head: One = None,
) -> HTMLResponse:
    """Versions side by side (default: the newest two), each metric across the versions, deployments over time."""
    api = f"/v1/models/{segment(team)}/{segment(name)}"
    # The model first: one the caller may not read is the error page's 404, whatever was asked.
    model = await visit.reads.get(api)
    listed, reports = await asyncio.gather(
        visit.reads.get(f"{api}/versions", {"limit": HISTORY, "include_prerelease": "true"}),
        visit.reads.get(f"{api}/deployments", {"limit": HISTORY, "outcome": "applied"}),
    )
    newest_first: list[dict[str, Any]] = listed["items"]
    asked: dict[str, str | int | None] = {"versions": versions} if versions else {"base": base, "head": head}
    if not versions and not (base and head):
        asked = {"versions": ",".join(v["version"] for v in reversed(newest_first[:2]))} if newest_first else {}
    comparison, problem, status = None, None, 200
    if asked.get("versions") or asked.get("base"):
        try:
            comparison = await visit.reads.get(f"{api}/compare", asked)
        except RegistryError as exc:
            if exc.status not in (404, 422):
                raise
            problem, status = exc.explanation, exc.status
    oldest_first = list(reversed(newest_first))
    context = {
        "model": model,
        "comparison": comparison,
        "problem": problem,
        "asked": ",".join(v["version"] for v in comparison["versions"]) if comparison else _asked_text(asked),
        "rows": metric_rows(comparison) if comparison else [],
        "metric_charts": metric_charts(comparison, oldest_first),
        "deployment_chart": Markup(
            deployments_chart.deployment_chart(reports["items"], versions=[v["version"] for v in oldest_first])
        ),
        "history_truncated": bool(listed.get("next_cursor")),
        "newest": [v["version"] for v in newest_first],
    }
    return render(request, "compare.html", context, visit=visit, status=status)


def metric_rows(comparison: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Per metric, one cell per version: its value and, after the base, its change with a verdict."""
    versions = comparison["versions"]
    deltas = {d["version"]: {m["name"]: m for m in d["metrics"]} for d in comparison["differences"]}
    names = sorted({name for v in versions for name in v["metrics"]})
    rows = []
    for name in names:
        cells = [{"value": versions[0]["metrics"].get(name)}]
        for version in versions[1:]:
            delta = deltas[version["version"]].get(name) or {}  # neither has it: not among the deltas
            row = views.MetricRow(name, delta.get("value"), delta.get("base"))
            shown = {key: delta.get(key) for key in ("value", "delta", "relative")}
            cells.append(shown | {"verdict": row.verdict})
        rows.append((name, cells))
    return rows


def metric_charts(comparison: dict[str, Any] | None, oldest_first: list[dict[str, Any]]) -> list[tuple[str, Markup]]:
    """A chart per metric (those of the compared versions, else of every version read) across the versions read."""
    source = comparison["versions"] if comparison else oldest_first
    names = sorted({name for v in source for name in v.get("metrics") or {}})[:MAX_METRIC_CHARTS]
    compared = {v["version"] for v in comparison["versions"]} if comparison else set()
    found = []
    for index, name in enumerate(names):
        points = [(v["version"], (v.get("metrics") or {}).get(name)) for v in oldest_first]
        found.append((name, Markup(charts.metric_chart(name, points, compared=compared, ident=f"metric-{index}"))))
    return found


def _asked_text(asked: dict[str, str | int | None]) -> str:
    """What the form shows again after a refusal: the versions as they were asked."""
    return ",".join(str(value) for value in asked.values() if value)
