"""A model's aliases and shares, and a version's lineage: where it came from and what was derived from it."""

from __future__ import annotations

from fastapi import APIRouter

from query.api.lookup import Lookup, not_found
from query.deps import CONSISTENT, INVALID, NOT_FOUND, REFUSALS, UNAVAILABLE, AsOf, Caller, Visible
from registry_contract import catalog
from registry_contract.documents import Document
from registry_contract.read_views import AliasesPublic, LineagePublic, SharesPublic
from registry_contract.views import ModelVersionPublic
from shared.chassis.http_params import SlugPath, VersionPath
from shared.chassis.problems import Problem

router = APIRouter(
    prefix="/v1/models/{team}/{name}", responses=REFUSALS | INVALID | NOT_FOUND | UNAVAILABLE, dependencies=CONSISTENT
)
MAX_CHILDREN = catalog.MAX_LINEAGE_CHILDREN


@router.get("/aliases", tags=["aliases"])
async def get_aliases(visible: Visible, team: SlugPath, name: SlugPath, as_of: AsOf = None) -> AliasesPublic:
    """The model's aliases (as they stood at ``as_of``, if given); ``GET …/versions/@{alias}`` resolves one.

    ``GET …/aliases/{alias}/history`` lists every move of one.
    """
    visible = await visible.as_of(team, name, as_of)
    model = await visible.model(team, name)
    aliases = sorted((model.get("aliases") or {}).items())
    return AliasesPublic(items=[{"alias": alias, "version": version} for alias, version in aliases])


@router.get("/shares", tags=["shares"])
async def get_shares(visible: Visible, caller: Caller, team: SlugPath, name: SlugPath) -> SharesPublic:
    """The teams the model is shared with; only its own team (or a platform admin) may list them."""
    model = await visible.model(team, name)
    if not caller.acts_for(model["team"]):
        raise not_found(f"the shares of {team}/{name}")  # a reader learns nothing of the other readers
    teams = sorted(set(model.get("readers") or []) - {model["team"]})
    return SharesPublic(items=[{"team": other} for other in teams])


@router.get("/versions/{version}/lineage", tags=["versions"])
async def get_lineage(visible: Visible, team: SlugPath, name: SlugPath, version: VersionPath) -> LineagePublic:
    """Walk a version's parents (as far as you may read them) and list the versions derived from it."""
    found = await visible.version(team, name, version)
    parents, truncated = await _parents(visible, found)
    children = await visible.reads.children(found, visible.visible, MAX_CHILDREN)
    return LineagePublic(
        version=ModelVersionPublic.of(found),
        parents=[ModelVersionPublic.of(doc) for doc in parents],
        parents_truncated=truncated,
        children=[ModelVersionPublic.of(doc) for doc in children],
    )


async def _parents(visible: Lookup, version: Document) -> tuple[list[Document], bool]:
    """``version``'s parents, nearest first, and whether the walk stopped before the first one."""
    parents: list[Document] = []
    current = version
    while (ref := current.get("parent")) is not None:
        if len(parents) == catalog.MAX_LINEAGE_DEPTH:
            return parents, True
        try:
            current = await visible.version(str(ref["team"]), str(ref["name"]), str(ref["version"]))
        except Problem as problem:
            if problem.reason != "not_found":
                raise
            return parents, True  # not readable, or deleted since: the same to the caller
        parents.append(current)
    return parents, False
