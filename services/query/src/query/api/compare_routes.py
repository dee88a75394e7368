"""Compare route: versions of one model side by side, with their differences from the first (the base)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from query.api.comparing import compare
from query.deps import CONSISTENT, INVALID, NOT_FOUND, REFUSALS, UNAVAILABLE, Visible
from registry_contract.compare_views import (
    MAX_COMPARED_VERSIONS,
    MAX_VERSION_CHARS,
    MAX_VERSIONS_CHARS,
    VersionComparison,
)
from shared.chassis.http_params import SlugPath
from shared.chassis.problems import Problem

router = APIRouter(
    prefix="/v1/models/{team}/{name}",
    tags=["versions"],
    responses=REFUSALS | INVALID | UNAVAILABLE,
    dependencies=CONSISTENT,
)
Versions = Annotated[
    str | None,
    Query(
        max_length=MAX_VERSIONS_CHARS,
        description=(
            f"2 to {MAX_COMPARED_VERSIONS} versions, comma-separated, the base first: SemVer (1.4.0), "
            "@alias or latest (e.g. 1.3.0,1.4.0,@champion)"
        ),
    ),
]
One = Annotated[str | None, Query(max_length=MAX_VERSION_CHARS, description="instead of versions: one of the two")]


def asked_versions(versions: str | None, base: str | None, head: str | None) -> list[str]:
    """The versions a request names, base first; the invalid problem when they are not 2 to 10 named ones."""
    if versions is not None and (base is not None or head is not None):
        raise Problem("invalid", "name the versions either as versions=… or as base=…&head=…, not both")
    if versions is not None:
        names = [part.strip() for part in versions.split(",")]
    elif base is not None and head is not None:
        names = [base.strip(), head.strip()]
    else:
        raise Problem("invalid", "name the versions to compare: versions=1.3.0,1.4.0 or base=1.3.0&head=1.4.0")
    if any(not name for name in names):
        raise Problem("invalid", "a version to compare is empty")
    if any(len(name) > MAX_VERSION_CHARS for name in names):
        raise Problem("invalid", f"a version is at most {MAX_VERSION_CHARS} characters")
    if not 2 <= len(names) <= MAX_COMPARED_VERSIONS:
        raise Problem("invalid", f"compare 2 to {MAX_COMPARED_VERSIONS} versions, not {len(names)}")
    return names


@router.get("/compare", responses=NOT_FOUND)
async def get_comparison(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    versions: Versions = None,
    base: One = None,
    head: One = None,
) -> VersionComparison:
    """Versions side by side, the first (base) beside each other one.

    Each version's metrics, parameters, tags, lineage (parent, datasets, code, run), approval,
    lifecycle, aliases, deployment status per environment and provenance; and for each version
    after the base: metric deltas (absolute and relative, and the metrics either lacks), tags and
    parameters added, removed or changed, datasets added or removed, and a changed code commit,
    parent, approval or lifecycle. A version that does not exist answers 404, as does a model you
    may not read; naming one version twice (also through an alias) is invalid.
    """
    names = asked_versions(versions, base, head)
    model = await visible.model(team, name)
    found = [await visible.version(team, name, wanted) for wanted in names]
    seen: dict[str, str] = {}
    for wanted, doc in zip(names, found, strict=True):
        if doc["_id"] in seen:
            raise Problem("invalid", f"{wanted!r} names version {doc['version']} again (as {seen[doc['_id']]!r})")
        seen[doc["_id"]] = wanted
    return compare(model, found)
