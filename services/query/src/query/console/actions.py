"""Signing in and out, and the console's actions: each a form post that becomes the API's own write.

An action is the registration service's HTTP write, sent from the server with the session's key,
so it is the same command with the same authorization, outcome event and audit entries as from
any client. Its outcome, or the problem's message, is shown once on the page the user returns to.
"""

from __future__ import annotations

import hmac
import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from query.console.sessions import Flash
from query.console.sign_in_page import set_session_cookie, sign_in_page
from query.console.web import (
    COOKIE,
    PATH,
    SIGN_IN_COOKIE,
    ConsoleRefusal,
    Visit,
    check_csrf,
    checked_alias,
    checked_version,
    console_of,
    form_of,
    redirect,
    safe_next,
    segment,
    visit,
)
from query.projection.model import parse_tokens
from registry_client.errors import RegistryError
from shared.chassis.http_params import SlugPath, VersionPath
from shared.chassis.problems import Problem

router = APIRouter(prefix=PATH, include_in_schema=False)
Signed = Annotated[Visit, Depends(visit)]
DEFAULT_WAIT_SECONDS = 5.0  # QUERY_CONSISTENCY_WAIT_SECONDS' default, when the app sets none


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request) -> HTMLResponse:
    """The sign-in form, with its own token (cookie and hidden field: there is no session to hold one yet)."""
    return sign_in_page(request)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Check the key (as the API would: a failure is the one recorded 401), then open a session."""
    form = await form_of(request)
    sent, expected = form.get("sign_in_token", ""), request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        return sign_in_page(request, message="The sign-in form expired; please sign in again.", status=403)
    console = console_of(request)
    key = form.get("api_key", "").strip()
    try:
        principal = console.guard.admit(request, await console.guard.authenticate_token(request, key))
    except Problem as problem:
        message = "That key was not accepted." if problem.status == 401 else problem.detail
        return sign_in_page(request, message=message, status=problem.status, headers=problem.headers)
    if not principal.has("models:read"):
        console.guard.deny(request, principal, status=403, reason="missing scope models:read")
        return sign_in_page(request, message="This key lacks the models:read scope the console needs.", status=403)
    session_id, _ = await console.sessions.create(key, principal)
    response = redirect(safe_next(form.get("next")))
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)
    set_session_cookie(response, request, session_id, max_age=int(console.sessions.lifetime.total_seconds()))
    return response


@router.post("/sign-out")
async def sign_out(request: Request, visit: Signed) -> Response:
    """End the session here and in MongoDB, and clear the cookie."""
    check_csrf(request, visit, await form_of(request))
    await console_of(request).sessions.close(visit.session_id)
    response = redirect(f"{PATH}/sign-in")
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


Write = tuple[str, str, dict[str, object]]  # method, path, body
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")


async def _act(request: Request, visit: Signed, back: str, write: Write, done: str) -> Response:
    """Send one write with the session's key; keep its outcome for the page at ``back``."""
    form = await form_of(request)
    check_csrf(request, visit, form)
    method, path, body = write
    key = form.get("idempotency_key", "")
    if key and not _IDEMPOTENCY_KEY.fullmatch(key):
        # The page's own keys are URL-safe tokens; anything else would not even make a header.
        raise ConsoleRefusal(422, "this form's idempotency key is not one the console made; reload the page")
    headers = {"Idempotency-Key": key} if key else {}
    try:
        await visit.registration.send(method, path, body, headers=headers)
        shown = await read_model_has(request, visit.registration.consistency)
        flash = Flash("ok", done if shown else f"{done} (not on this page yet: reload in a moment)")
    except RegistryError as exc:
        flash = Flash("problem", f"{exc.explanation}" + (f" (HTTP {exc.status})" if exc.status else ""))
    await console_of(request).sessions.flash(visit.session_id, flash)
    return redirect(back)


async def read_model_has(request: Request, token: str | None) -> bool:
    """Wait (at most ``QUERY_CONSISTENCY_WAIT_SECONDS``) until this replica's read model has the write ``token`` names.

    The page the action returns to is read from that model: so it shows the write. ``True``
    without a token (nothing to wait for) or without a read model.
    """
    model = getattr(request.app.state, "read_model", None)
    if model is None or not token:
        return True
    try:
        tokens = parse_tokens(token)
    except ValueError:
        return True  # not one of registration's tokens: nothing this replica could wait for
    wait = getattr(request.app.state, "consistency_wait_seconds", DEFAULT_WAIT_SECONDS)
    reached: bool = await model.reached(tokens, float(wait))
    return reached


def _model_page(team: str, name: str, version: str | None = None) -> str:
    page = f"{PATH}/models/{segment(team)}/{segment(name)}"
    return f"{page}?{urlencode({'version': version})}" if version else page


def _version_path(team: str, name: str, version: str, action: str) -> str:
    return f"/v1/models/{segment(team)}/{segment(name)}/versions/{segment(checked_version(version))}/{action}"


@router.post("/models/{team}/{name}/versions/{version}/approval")
async def decide(request: Request, visit: Signed, team: SlugPath, name: SlugPath, version: VersionPath) -> Response:
    """Approve or reject a version (the API requires ``models:approve``)."""
    form = await form_of(request)
    status = form.get("decision", "")
    if status not in ("approved", "rejected", "pending"):
        raise ConsoleRefusal(422, "the decision must be approved, rejected or pending")
    body: dict[str, object] = {"status": status}
    if form.get("comment"):
        body["comment"] = form["comment"]
    path = _version_path(team, name, version, "approval")
    done = f"{team}/{name} {version}: {status}"
    return await _act(request, visit, _model_page(team, name, version), ("PUT", path, body), done)


@router.post("/models/{team}/{name}/aliases")
async def set_alias(request: Request, visit: Signed, team: SlugPath, name: SlugPath) -> Response:
    """Point an alias at a version, creating or moving it (the API requires ``models:write``)."""
    form = await form_of(request)
    alias, version = form.get("alias", "").strip(), form.get("version", "").strip()
    if not alias or not version:
        raise ConsoleRefusal(422, "an alias needs a name and a version")
    path = f"/v1/models/{segment(team)}/{segment(name)}/aliases/{segment(checked_alias(alias))}"
    done = f"alias {alias} → {version}"
    return await _act(request, visit, _model_page(team, name, version), ("PUT", path, {"version": version}), done)


@router.post("/models/{team}/{name}/versions/{version}/lifecycle")
async def set_lifecycle(
    request: Request, visit: Signed, team: SlugPath, name: SlugPath, version: VersionPath
) -> Response:
    """Deprecate, archive or re-activate a version (the API requires ``models:write``)."""
    state = (await form_of(request)).get("state", "")
    path = _version_path(team, name, version, "lifecycle")
    done = f"{team}/{name} {version} is now {state}"
    return await _act(request, visit, _model_page(team, name, version), ("POST", path, {"state": state}), done)
