"""HTTP routes of the curation commands: aliases, approvals, the model's own metadata, deletes.

Like :mod:`registration.routes`, each builds its command and runs the Kafka path's handler.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict

from registration.routes import IdempotencyKey, Writer, keep_response, run, version_of, written
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.views import ModelVersionPublic
from registry_contract.write_views import AliasPublic, ModelUpdatedPublic
from shared.chassis.http_auth import requires
from shared.chassis.http_params import SlugPath, VersionPath
from shared.chassis.problems import keyed_route_refusals

Approver = Annotated[Principal, Depends(requires("models:approve"))]
router = APIRouter(
    prefix="/v1/models/{team}/{name}",
    responses=keyed_route_refusals("not_found", "conflict", "invalid"),
    dependencies=[Depends(keep_response)],
)


class AliasBody(BaseModel):
    """The version an alias points at."""

    model_config = ConfigDict(extra="forbid")

    version: messages.SemVer


@router.put("/aliases/{alias}", tags=["aliases"], responses=written(200))
async def set_alias(
    team: SlugPath, name: SlugPath, alias: SlugPath, body: AliasBody, caller: Writer, request: Request
) -> AliasPublic:
    """Point ``alias`` (``champion``, ``production``…) at a version; it moves if it pointed elsewhere.

    Idempotent: pointing it at the version it already names answers 200 like any set (with
    ``previous_version`` equal to ``version``) and changes nothing.
    """
    data = {"team": team, "name": name, "alias": alias, "version": body.version}
    return AliasPublic.model_validate((await run(request, messages.SET_ALIAS, data, caller, None)).event.data)


@router.delete("/aliases/{alias}", status_code=204, tags=["aliases"], responses=written(204))
async def remove_alias(team: SlugPath, name: SlugPath, alias: SlugPath, caller: Writer, request: Request) -> None:
    """Remove an alias (the version stays)."""
    await run(request, messages.REMOVE_ALIAS, {"team": team, "name": name, "alias": alias}, caller, None)


@router.put("/versions/{version}/approval", tags=["versions"], responses=written(200))
async def set_approval(
    team: SlugPath,
    name: SlugPath,
    version: VersionPath,
    body: messages.ApprovalDecision,
    caller: Approver,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> ModelVersionPublic:
    """Approve or reject a version (scope ``models:approve``); gated environments need ``approved``.

    Answers the version as it now is, with the aliases that point at it. Deciding again (approving
    an approved version) answers 200 too, and records the decision again: who, when and why.
    """
    data = {**body.model_dump(exclude_none=True), "team": team, "name": name, "version": version}
    return version_of(await run(request, messages.SET_APPROVAL, data, caller, idempotency_key))


@router.patch("", tags=["models"], responses=written(200))
async def update_model(
    team: SlugPath,
    name: SlugPath,
    body: messages.ModelMetadata,
    caller: Writer,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> ModelUpdatedPublic:
    """Set the model's own description, owners, documentation (markdown), tags or links."""
    data = {**body.model_dump(mode="json", exclude_unset=True), "team": team, "name": name}
    outcome = await run(request, messages.UPDATE_MODEL, data, caller, idempotency_key)
    return ModelUpdatedPublic.model_validate(outcome.event.data)


@router.delete("/versions/{version}", status_code=204, tags=["versions"], responses=written(204))
async def delete_version(
    team: SlugPath, name: SlugPath, version: VersionPath, caller: Writer, request: Request
) -> None:
    """Delete a version that is deployed nowhere and named by no alias; its number is never reused."""
    data = {"team": team, "name": name, "version": version}
    await run(request, messages.DELETE_VERSION, data, caller, None)
