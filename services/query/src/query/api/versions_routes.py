"""Version routes: a model's versions by SemVer precedence, and one version (or ``latest``)."""

from typing import Annotated

from fastapi import APIRouter, Query

from query.api.lookup import with_aliases
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
    Visible,
    checked_status,
)
from registry_contract import catalog
from registry_contract.messages import Lifecycle
from registry_contract.versioning import VersionRange, parse_range
from registry_contract.views import ModelVersionPublic, Page
from shared.chassis.http_params import SlugPath, VersionPath
from shared.chassis.problems import Problem

router = APIRouter(
    prefix="/v1/models/{team}/{name}/versions",
    tags=["versions"],
    responses=REFUSALS | INVALID | UNAVAILABLE,
    dependencies=CONSISTENT,
)
Range = Annotated[str | None, Query(max_length=256, description="e.g. >=1.2.0,<2.0.0")]


def version_range(text: str | None) -> VersionRange | None:
    """The parsed ``range`` query parameter, or the invalid problem."""
    try:
        return parse_range(text) if text else None
    except ValueError as exc:
        raise Problem("invalid", str(exc)) from None


@router.get("", responses=NOT_FOUND)
async def get_versions(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    range: Range = None,
    include_prerelease: bool = False,
    status: DeploymentStatus = None,
    environment: Environment = None,
    lifecycle: Lifecycle | None = None,
    limit: Limit = catalog.DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    as_of: AsOf = None,
) -> Page[ModelVersionPublic]:
    """Versions by SemVer precedence, newest first; filter by deployment ``status``/``environment`` or ``lifecycle``.

    With ``as_of``: the versions as they stood then (versions deleted since then included, later ones left out).
    """
    status = checked_status(status)
    visible = await visible.as_of(team, name, as_of)
    model = await visible.model(team, name)
    page = await visible.reads.list_versions(
        model,
        version_range=version_range(range),
        include_prerelease=include_prerelease,
        limit=limit,
        cursor=cursor,
        status=status,
        environment=environment,
        lifecycle=lifecycle,
    )
    return Page[ModelVersionPublic](
        items=[ModelVersionPublic.of(with_aliases(doc, model)) for doc in page.items], next_cursor=page.next_cursor
    )


@router.get("/{version}", responses=NOT_FOUND)
async def get_version(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    version: VersionPath,
    include_prerelease: Annotated[bool, Query(description="latest: prereleases count too")] = False,
    include_deprecated: Annotated[bool, Query(description="latest: deprecated versions count too")] = False,
    as_of: AsOf = None,
) -> ModelVersionPublic:
    """One version: a SemVer version, ``@alias`` (``@champion``), or ``latest``.

    ``latest`` is the highest non-prerelease version that is ``active``. With ``as_of``, the
    version as it stood then, and ``@alias`` and ``latest`` resolved as they were then.
    """
    visible = await visible.as_of(team, name, as_of)
    found = await visible.version(
        team, name, version, include_prerelease=include_prerelease, include_deprecated=include_deprecated
    )
    return ModelVersionPublic.of(found)
