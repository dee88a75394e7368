"""HTTP adapter: each write route builds a command and runs the same handler as Kafka."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response

from registration.batch import SOURCE
from registration.commands import Command, Outcome, request_fingerprint
from shared import correlation, messages
from shared.auth import Principal
from shared.envelope import CloudEvent
from shared.http_auth import Guard
from shared.http_params import SlugPath
from shared.problems import Problem
from shared.views import version_public

HandleOne = Callable[[Command], Awaitable[Outcome]]

_STATUS = {
    "invalid": (422, "Invalid command"),
    "unauthenticated": (401, "Unauthenticated"),
    "forbidden": (403, "Forbidden"),
    "duplicate_version": (409, "Duplicate version"),
    "not_found": (404, "Not found"),
    "conflict": (409, "Conflict"),
    "rate_limited": (429, "Too many requests"),
}


def _schema(model: type[Any], *, drop: tuple[str, ...]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in drop:
        schema["properties"].pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    schema.pop("$defs", None)
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def build_router(*, handle_one: HandleOne, guard: Guard) -> APIRouter:
    """The write API of DESIGN §3 for model versions."""
    router = APIRouter(prefix="/v1/models/{team}/{name}", tags=["versions"])
    Caller = Annotated[Principal, Depends(guard.requiring("models:write"))]
    Admin = Annotated[Principal, Depends(guard.requiring("team:admin"))]
    AnyBody = Annotated[Any, Body()]
    IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]

    async def run(command_type: str, data: dict[str, Any], caller: Principal, idempotency_key: str | None) -> Outcome:
        event = CloudEvent(
            id=idempotency_key or correlation.new_id(),
            source=SOURCE + "/http",
            type=command_type,
            correlation_id=correlation.current() or correlation.new_id(),
            data=data,
        )
        command = Command(event=event, principal=caller, fingerprint=request_fingerprint(command_type, data))
        outcome = await handle_one(command)
        if outcome.replayed and outcome.fingerprint not in (None, command.fingerprint):
            raise Problem(
                422,
                "Idempotency key reused",
                "this Idempotency-Key was already used for a different request; use a new key",
                type_="urn:registry:problem:invalid",
            )
        if outcome.rejected:
            status, title = _STATUS[outcome.event.data["reason"]]
            raise Problem(
                status,
                title,
                outcome.event.data["message"],
                type_=f"urn:registry:problem:{outcome.event.data['reason']}",
                errors=outcome.event.data.get("errors") or None,
            )
        return outcome

    def body_object(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Problem(
                422, "Invalid request", "the body must be a JSON object", type_="urn:registry:problem:invalid"
            )
        return body

    async def change_version(
        command_type: str, body: Any, caller: Principal, idempotency_key: str | None, **path: str
    ) -> dict[str, Any]:
        outcome = await run(command_type, _with_path(body_object(body), **path), caller, idempotency_key)
        return version_public(outcome.version) if outcome.version else outcome.event.data

    @router.post(
        "/versions",
        status_code=201,
        openapi_extra=_schema(messages.RegisterModelVersion, drop=("team", "name")),
    )
    async def register_version(
        team: SlugPath,
        name: SlugPath,
        body: AnyBody,
        caller: Caller,
        response: Response,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Register a new version (201), 409 when its SemVer precedence exists, 422 when invalid."""
        data = _with_path(body_object(body), team=team, name=name)
        outcome = await run(messages.REGISTER_MODEL_VERSION, data, caller, idempotency_key)
        response.headers["Location"] = f"/v1/models/{team}/{name}/versions/{outcome.event.data.get('version')}"
        return outcome.event.data

    @router.patch(
        "/versions/{version}",
        openapi_extra=_schema(messages.UpdateModelVersion, drop=("team", "name", "version")),
    )
    async def update_version(
        team: SlugPath,
        name: SlugPath,
        version: str,
        body: AnyBody,
        caller: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Change description, tags or metrics of a version."""
        return await change_version(
            messages.UPDATE_MODEL_VERSION, body, caller, idempotency_key, team=team, name=name, version=version
        )

    @router.post(
        "/versions/{version}/lifecycle",
        openapi_extra=_schema(messages.SetVersionLifecycle, drop=("team", "name", "version")),
    )
    async def set_lifecycle(
        team: SlugPath,
        name: SlugPath,
        version: str,
        body: AnyBody,
        caller: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        """Move a version to ``active``, ``deprecated`` or ``archived``."""
        return await change_version(
            messages.SET_VERSION_LIFECYCLE, body, caller, idempotency_key, team=team, name=name, version=version
        )

    @router.put("/shares/{other_team}", tags=["shares"])
    async def share(team: SlugPath, name: SlugPath, other_team: SlugPath, caller: Admin) -> dict[str, Any]:
        """Let ``other_team`` read every version of this model."""
        data = {"team": team, "name": name, "with_team": other_team}
        return (await run(messages.SHARE_MODEL, data, caller, None)).event.data

    @router.delete("/shares/{other_team}", status_code=204, tags=["shares"])
    async def unshare(team: SlugPath, name: SlugPath, other_team: SlugPath, caller: Admin) -> None:
        """Withdraw ``other_team``'s read access, effective at once."""
        await run(messages.UNSHARE_MODEL, {"team": team, "name": name, "with_team": other_team}, caller, None)

    return router


def _with_path(body: dict[str, Any], **path: str) -> dict[str, Any]:
    """Merge path parameters into the body; the body may not set them (server-owned: 422)."""
    clashes = [key for key in path if key in body]
    if clashes:
        raise Problem(
            422,
            "Invalid request",
            f"body fields {clashes} are set by the URL path",
            type_="urn:registry:problem:invalid",
            errors=[{"loc": ["body", key], "msg": "set by the URL path", "type": "server_owned"} for key in clashes],
        )
    return {**body, **path}
