"""HTTP adapter: each write route builds a command and runs the same handler as Kafka.

The request bodies are the command data without what the URL path names (server-owned: a body
that sets ``team``, ``name`` or ``version`` is refused as an unknown field); the response is the
resource the command produced, with the write's consistency token in ``X-Registry-Consistency``.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict

from registration.batch import SOURCE
from registration.commands import Command, Outcome, request_fingerprint
from registry_contract import correlation, messages
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from registry_contract.views import ModelVersionPublic
from registry_contract.write_views import ShareChange
from shared.chassis.http_auth import requires
from shared.chassis.http_params import SlugPath, VersionPath
from shared.chassis.problems import Problem, documented, keyed_route_refusals

HandleOne = Callable[[Command], Awaitable[Outcome]]
Writer = Annotated[Principal, Depends(requires("models:write"))]
Admin = Annotated[Principal, Depends(requires("team:admin"))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
_REFUSALS = keyed_route_refusals("not_found", "conflict", "invalid")
CONSISTENCY_HEADER = "X-Registry-Consistency"


def written(status: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a write route: its ``status`` carries the write's consistency token."""
    header = {
        "description": (
            "r.<model_id>.<revision>: the model's revision after this write. Send it back in the same "
            "header on a read of the query service to read at least this write."
        ),
        "schema": {"type": "string", "pattern": r"^r\.mdl_[0-9a-f]{24}\.[0-9]{1,20}$"},
    }
    return {status: {"headers": {CONSISTENCY_HEADER: header}}}


async def keep_response(request: Request, response: Response) -> None:
    """Let :func:`run` set headers on the response of the route it runs for."""
    request.state.write_response = response


router = APIRouter(prefix="/v1/models/{team}/{name}", responses=_REFUSALS, dependencies=[Depends(keep_response)])


class RegisterVersionBody(messages.VersionFields):
    """What a producer sends to register a version; team and name come from the path."""

    version: messages.SemVer


class UpdateVersionBody(BaseModel):
    """The fields of a version that may change (at least one)."""

    model_config = ConfigDict(extra="forbid")

    description: messages.Description | None = None
    tags: messages.Tags | None = None
    metrics: messages.Metrics | None = None


class LifecycleBody(BaseModel):
    """The lifecycle state to move a version to."""

    model_config = ConfigDict(extra="forbid")

    state: messages.Lifecycle


async def run(request: Request, command_type: str, data: dict[str, Any], caller: Principal, key: str | None) -> Outcome:
    """Run the command through the Kafka path's handler; a refusal becomes its problem."""
    event = CloudEvent(
        id=key or correlation.new_id(),
        source=SOURCE + "/http",
        type=command_type,
        correlation_id=correlation.current() or correlation.new_id(),
        data=data,
    )
    command = Command(event=event, principal=caller, fingerprint=request_fingerprint(command_type, data))
    handle_one: HandleOne = request.app.state.handle_one
    outcome = await handle_one(command)
    if outcome.replayed and outcome.fingerprint not in (None, command.fingerprint):
        raise Problem("invalid", "this Idempotency-Key was already used for a different request; use a new key")
    if outcome.rejected:
        rejection = messages.CommandRejected.model_validate(outcome.event.data)
        raise Problem(rejection.reason, rejection.message, errors=rejection.errors or None)
    response: Response | None = getattr(request.state, "write_response", None)
    if response is not None and outcome.consistency_token is not None:
        response.headers[CONSISTENCY_HEADER] = outcome.consistency_token
    return outcome


def version_of(outcome: Outcome) -> ModelVersionPublic:
    """The version an outcome touched, as clients see it (with the aliases that name it)."""
    if outcome.version is not None:
        return ModelVersionPublic.of(outcome.version)
    if outcome.event.type == messages.MODEL_VERSION_REGISTERED:
        return ModelVersionPublic.model_validate(outcome.event.data)  # a replay: the stored event's data
    raise Problem("not_found", "the version this request changed has been deleted since")  # a replay, too late


def _register_refusals() -> dict[int | str, dict[str, Any]]:
    """The register route's answers: its consistency token, and a 422 that is ``invalid`` or ``bad_signature``."""
    refused = documented("invalid")
    refused[422] = refused[422] | {
        "description": "Invalid request (`invalid`) or Bad signature (`bad_signature`: the provenance signature "
        "is malformed, or no signing key of the team verifies it)"
    }
    return written(201) | refused


@router.post("/versions", status_code=201, tags=["versions"], responses=_register_refusals())
async def register_version(
    team: SlugPath,
    name: SlugPath,
    body: RegisterVersionBody,
    caller: Writer,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ModelVersionPublic:
    """Register a new version (201), 409 when its SemVer precedence exists, 422 when invalid.

    With ``provenance.signature`` (an OpenSSF model-signing signature file), the signature is verified
    offline against the team's signing keys and the verified manifest is recorded as the version's
    ``provenance``; 422 ``bad_signature`` when it is malformed or no key of the team verifies it.
    """
    data = {**body.model_dump(mode="json", exclude_unset=True), "team": team, "name": name}
    outcome = await run(request, messages.REGISTER_MODEL_VERSION, data, caller, idempotency_key)
    version = version_of(outcome)
    response.headers["Location"] = f"/v1/models/{team}/{name}/versions/{version.version}"
    return version


@router.patch("/versions/{version}", tags=["versions"], responses=written(200))
async def update_version(
    team: SlugPath,
    name: SlugPath,
    version: VersionPath,
    body: UpdateVersionBody,
    caller: Writer,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> ModelVersionPublic:
    """Change description, tags or metrics of a version."""
    data = {**body.model_dump(mode="json", exclude_unset=True), "team": team, "name": name, "version": version}
    return version_of(await run(request, messages.UPDATE_MODEL_VERSION, data, caller, idempotency_key))


@router.post("/versions/{version}/lifecycle", tags=["versions"], responses=written(200))
async def set_lifecycle(
    team: SlugPath,
    name: SlugPath,
    version: VersionPath,
    body: LifecycleBody,
    caller: Writer,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> ModelVersionPublic:
    """Move a version to ``active``, ``deprecated`` or ``archived``."""
    data = {"state": body.state, "team": team, "name": name, "version": version}
    return version_of(await run(request, messages.SET_VERSION_LIFECYCLE, data, caller, idempotency_key))


@router.put("/shares/{other_team}", tags=["shares"], responses=written(200))
async def share(team: SlugPath, name: SlugPath, other_team: SlugPath, caller: Admin, request: Request) -> ShareChange:
    """Let ``other_team`` read every version of this model.

    Idempotent: sharing with a team the model is already shared with answers 200 and changes nothing.
    A model is shared with at most ``REGISTRATION_MAX_SHARES_PER_MODEL`` teams (50): one more is
    refused 409 ``conflict`` naming the limit.
    """
    data = {"team": team, "name": name, "with_team": other_team}
    return ShareChange.model_validate((await run(request, messages.SHARE_MODEL, data, caller, None)).event.data)


@router.delete("/shares/{other_team}", status_code=204, tags=["shares"], responses=written(204))
async def unshare(team: SlugPath, name: SlugPath, other_team: SlugPath, caller: Admin, request: Request) -> None:
    """Withdraw ``other_team``'s read access, effective at once."""
    await run(request, messages.UNSHARE_MODEL, {"team": team, "name": name, "with_team": other_team}, caller, None)
