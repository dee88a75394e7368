"""Deployment route: where a version stands per environment, and the reports that got it there."""

from typing import Literal

from fastapi import APIRouter

from query.deps import CONSISTENT, INVALID, NOT_FOUND, REFUSALS, UNAVAILABLE, AsOf, Cursor, Environment, Limit, Visible
from registry_contract import catalog
from registry_contract.views import DeploymentReportPublic, Page, VersionDeployments
from shared.chassis.http_params import SlugPath, VersionPath

router = APIRouter(
    prefix="/v1/models/{team}/{name}",
    tags=["deployments"],
    responses=REFUSALS | INVALID | UNAVAILABLE,
    dependencies=CONSISTENT,
)


@router.get("/deployments", responses=NOT_FOUND)
async def get_model_deployments(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    environment: Environment = None,
    outcome: Literal["applied", "out_of_order", "rejected"] | None = None,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    as_of: AsOf = None,
) -> Page[DeploymentReportPublic]:
    """The model's latest deployment reports across its versions (one ``environment``'s, if given), newest first.

    With ``as_of``: the reports the tracker had recorded by then. A team reading the model through a
    share sees only the reports recorded since its current access began.
    """
    visible = await visible.as_of(team, name, as_of)
    model = await visible.model(team, name)
    shown = visible.reports_after(model)
    reports = await visible.reads.model_deployments(
        model, environment=environment, outcome=outcome, limit=limit, shown=shown
    )
    return Page[DeploymentReportPublic](items=[DeploymentReportPublic.of(doc) for doc in reports])


@router.get("/versions/{version}/deployments", responses=NOT_FOUND)
async def get_deployments(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    version: VersionPath,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    as_of: AsOf = None,
) -> VersionDeployments:
    """Current status per environment and the report history of a version, oldest report first.

    With ``as_of``: each environment's status then (its latest applied report recorded by then),
    and the reports recorded by then. A team reading the model through a share sees only the
    reports recorded since its current access began (the statuses stand as every report left them).
    """
    visible = await visible.as_of(team, name, as_of)
    found = await visible.version(team, name, version)
    shown = visible.reports_after(await visible.model(team, name))
    page = await visible.reads.deployment_history(found, limit=limit, cursor=cursor, shown=shown)
    return VersionDeployments(
        items=[DeploymentReportPublic.of(doc) for doc in page.items],
        next_cursor=page.next_cursor,
        status=found.get("status") or "registered",
        environments=found.get("environments") or {},
    )
