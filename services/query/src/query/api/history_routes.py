"""The past of a model: an alias's moves, an environment's status changes across versions, the model's timeline.

A team that reads the model through a share sees each from the moment its current access began.
"""

from fastapi import APIRouter

from query.api import past
from query.deps import CONSISTENT, INVALID, NOT_FOUND, REFUSALS, UNAVAILABLE, Cursor, Limit, Visible
from registry_contract import catalog
from registry_contract.history_views import AliasMovePublic, EnvironmentChangePublic, TimelineEntryPublic
from registry_contract.views import Page
from shared.chassis.http_params import SlugPath

router = APIRouter(
    prefix="/v1/models/{team}/{name}",
    tags=["history"],
    responses=REFUSALS | INVALID | NOT_FOUND | UNAVAILABLE,
    dependencies=CONSISTENT,
)


@router.get("/aliases/{alias}/history")
async def get_alias_history(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    alias: SlugPath,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[AliasMovePublic]:
    """Every set, move and removal of the alias, oldest first (empty for an alias never set)."""
    model = await visible.model(team, name)
    page = past.alias_history(visible.reads.read_model, model, alias, visible.since(model), limit=limit, cursor=cursor)
    return Page[AliasMovePublic](items=[AliasMovePublic.of(row) for row in page.items], next_cursor=page.next_cursor)


@router.get("/environments/{environment}/timeline")
async def get_environment_timeline(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    environment: SlugPath,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[EnvironmentChangePublic]:
    """Every status change in the environment, across the model's versions, oldest first.

    Each is an applied deployment report: which version, from which status to which, when the
    tracker recorded it (``at``) and when the pipeline says it happened (``occurred_at``).
    """
    model = await visible.model(team, name)
    page = past.environment_timeline(
        visible.reads.read_model, model, environment, visible.since(model), limit=limit, cursor=cursor
    )
    items = [EnvironmentChangePublic.of(row) for row in page.items]
    return Page[EnvironmentChangePublic](items=items, next_cursor=page.next_cursor)


@router.get("/timeline")
async def get_model_timeline(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[TimelineEntryPublic]:
    """The model's timeline, newest first: alias moves, approval decisions, deletions and status changes."""
    model = await visible.model(team, name)
    page = past.model_timeline(visible.reads.read_model, model, visible.since(model), limit=limit, cursor=cursor)
    items = [TimelineEntryPublic.model_validate(entry) for entry in page.items]
    return Page[TimelineEntryPublic](items=items, next_cursor=page.next_cursor)
