"""Model routes: lists of the models a caller can see, one model, and its history."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from query.api.pagination import SortSpec
from query.api.reads import MODEL_SORTS, ModelFilters
from query.deps import (
    CONSISTENT,
    INVALID,
    NOT_FOUND,
    REFUSALS,
    UNAVAILABLE,
    AsOf,
    Cursor,
    DeploymentStatus,
    Environment,
    Limit,
    Slug,
    Visible,
    checked_status,
)
from registry_contract import catalog
from registry_contract.views import ModelEventPublic, ModelPublic, Page
from shared.chassis.http_params import IdPath, SlugPath
from shared.chassis.problems import Problem

router = APIRouter(prefix="/v1", tags=["models"], responses=REFUSALS | INVALID | UNAVAILABLE, dependencies=CONSISTENT)
Sort = Annotated[str, Query(max_length=32, description="a field of /v1/meta model_sorts, '-' for descending")]


async def model_filters(
    team: Slug | None = None,
    framework: Annotated[str | None, Query(max_length=64)] = None,
    status: DeploymentStatus = None,
    environment: Environment = None,
    deployment_target: Annotated[str | None, Query(max_length=64)] = None,
    tag: Annotated[list[str], Query(max_length=20, description="key:value")] = [],  # noqa: B006 (FastAPI copies defaults)
    name_prefix: Annotated[str | None, Query(max_length=63)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> ModelFilters:
    """The filters of ``GET /v1/models`` from its query string."""
    bad_tags = [pair for pair in tag if ":" not in pair]
    if bad_tags:
        raise Problem("invalid", f"tag filters must look like key:value, got {bad_tags}")
    return ModelFilters(
        team=team,
        framework=framework,
        status=checked_status(status),
        environment=environment,
        deployment_target=deployment_target,
        tags=tuple(tag),
        name_prefix=name_prefix,
        created_after=created_after,
        created_before=created_before,
    )


async def list_models(
    visible: Visible, filters: ModelFilters, sort: str, limit: int, cursor: str | None
) -> Page[ModelPublic]:
    """One page of the visible models matching ``filters``."""
    page = await visible.reads.list_models(
        filters, visible=visible.visible, sort=SortSpec.parse(sort, MODEL_SORTS), limit=limit, cursor=cursor
    )
    items = [visible.reads.model_view(doc) for doc in page.items]
    return Page[ModelPublic](items=items, next_cursor=page.next_cursor)


# ``visible`` comes first: the caller is authenticated before its filters are judged.
@router.get("/models")
async def get_models(
    visible: Visible,
    filters: Annotated[ModelFilters, Depends(model_filters)],
    sort: Sort = "-created_at",
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[ModelPublic]:
    """Models you can see, filtered and paginated (``next_cursor`` until the end)."""
    return await list_models(visible, filters, sort, limit, cursor)


@router.get("/teams/{team}/models")
async def get_team_models(
    visible: Visible,
    team: SlugPath,
    sort: Sort = "-created_at",
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[ModelPublic]:
    """One team's models."""
    return await list_models(visible, ModelFilters(team=team), sort, limit, cursor)


# Declared before /models/{team}/{name}, which would otherwise take "id" for a team.
@router.get("/models/id/{model_id}", responses=NOT_FOUND)
async def get_model_by_id(visible: Visible, model_id: IdPath) -> ModelPublic:
    """A model by its stable id."""
    return visible.reads.model_view(await visible.model_by_id(model_id))


@router.get("/models/{team}/{name}", responses=NOT_FOUND)
async def get_model(visible: Visible, team: SlugPath, name: SlugPath, as_of: AsOf = None) -> ModelPublic:
    """A model and its headline (latest) version fields (as they stood at ``as_of``, if given)."""
    lookup = await visible.as_of(team, name, as_of)  # as_of: a past state's reads, with views of their own
    return lookup.reads.model_view(await lookup.model(team, name))


@router.get("/models/{team}/{name}/history", responses=NOT_FOUND)
async def get_history(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    limit: Limit = catalog.MAX_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[ModelEventPublic]:
    """Every change of the model, oldest first; a team reading it through a share sees them from the share on."""
    model = await visible.model(team, name)
    page = await visible.reads.history(model, limit=limit, cursor=cursor, since=visible.since(model))
    return Page[ModelEventPublic](items=[ModelEventPublic.of(doc) for doc in page.items], next_cursor=page.next_cursor)
