"""A team's recent activity: its newest registrations and deployment reports, within what the caller reads."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from query.deps import CONSISTENT, INVALID, REFUSALS, UNAVAILABLE, Visible
from registry_contract import catalog
from registry_contract.documents import Document
from registry_contract.views import DeploymentReportPublic, ModelVersionPublic, Page
from shared.chassis.http_params import SlugPath

router = APIRouter(
    prefix="/v1/teams/{team}", tags=["teams"], responses=REFUSALS | INVALID | UNAVAILABLE, dependencies=CONSISTENT
)
RecentLimit = Annotated[int, Query(ge=1, le=catalog.MAX_PAGE_SIZE)]
Activity = Literal["versions", "deployments"]


async def _recent(visible: Visible, what: Activity, team: str, limit: int) -> list[Document]:
    reads = visible.reads
    readable = await reads.readable_model_ids(team, visible.visible)
    return await reads.team_recent(what, team, readable, limit, visible.reports_after)


@router.get("/versions")
async def recent_versions(visible: Visible, team: SlugPath, limit: RecentLimit = 20) -> Page[ModelVersionPublic]:
    """The team's most recently registered versions, newest first (of another team: only its models shared with you)."""
    docs = await _recent(visible, "versions", team, limit)
    return Page[ModelVersionPublic](items=[ModelVersionPublic.of(doc) for doc in docs])


@router.get("/deployments")
async def recent_deployments(visible: Visible, team: SlugPath, limit: RecentLimit = 20) -> Page[DeploymentReportPublic]:
    """The team's most recent deployment reports on its versions, newest first.

    Of another team: only those of the models shared with you, recorded since your access to each began.
    """
    docs = await _recent(visible, "deployments", team, limit)
    return Page[DeploymentReportPublic](items=[DeploymentReportPublic.of(doc) for doc in docs])
