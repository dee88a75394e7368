"""Signing in through the identity provider: OpenID Connect's authorization code flow, with PKCE.

``GET /console/sign-in/oidc`` is a link, not a form (the pages' ``form-action 'self'`` stops a
form posting to the provider): it keeps a new flow and sends the browser to the provider, which
sends it back to ``/console/sign-in/oidc/callback`` with a code. The flow's cookie is
``SameSite=Lax`` so that this navigation from the provider's site carries it; it holds only the
flow's id, for ten minutes, on the sign-in paths.

The callback then treats the ID token as the key sign-in treats a key: the guard authenticates it
(registration verifies it and maps it to a team and scopes by the platform's sign-in rules), the
principal needs ``models:read``, and the session holds the token in the key's place.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from query.console.identity_provider import (
    IdentityProvider,
    ProviderRefused,
    ProviderUnavailable,
    error_code,
    token_claims,
)
from query.console.sessions import Person, Session
from query.console.sign_in_page import secure_cookies, set_session_cookie, sign_in_page
from query.console.sign_ins import FLOW_LIFETIME, SignInFlow
from query.console.web import PAGE_HEADERS, PATH, SIGN_IN_COOKIE, console_of, render, safe_next
from registry_contract.auth import Principal
from shared.chassis.problems import Problem

log = structlog.get_logger(__name__)
router = APIRouter(prefix=PATH, include_in_schema=False)

FLOW_COOKIE = "mr_console_oidc"
FLOW_COOKIE_PATH = f"{PATH}/sign-in"  # sent to the callback (and the sign-in pages), nowhere else
CALLBACK_PATH = f"{PATH}/sign-in/oidc/callback"
Param = Annotated[str | None, Query()]
NOT_SET_UP = "Signing in through an identity provider is not set up here: sign in with an API key."


class SignInFailed(Exception):
    """A callback that opens no session: the sign-in page with ``message``; ``reason`` is what the log says."""

    def __init__(self, status: int, reason: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.message, self.headers = status, reason, message, headers or {}


def callback_url(request: Request, public_url: str | None) -> str:
    """The redirect URI: under ``QUERY_CONSOLE_PUBLIC_URL`` when set, else under the request's own origin."""
    base = public_url.rstrip("/") if public_url else f"{request.url.scheme}://{request.url.netloc}"
    return base + CALLBACK_PATH


TOO_MANY_STARTS = "Too many sign-ins were started from your address just now; wait a moment and try again."


@router.get("/sign-in/oidc")
async def begin_sign_in(request: Request, next_page: Annotated[str | None, Query(alias="next")] = None) -> Response:
    """Keep a new flow (state, nonce, PKCE verifier) and send the browser to the provider's authorization endpoint."""
    console = console_of(request)
    provider = console.identity_provider
    if provider is None:
        return sign_in_page(request, message=NOT_SET_UP, status=404)
    # No one is signed in yet, and each start stores a flow: starts are limited per client address.
    client = request.client.host if request.client else "unknown"
    if console.guard.limiter.take(f"console-sign-in/{client}", None) > 0:
        return sign_in_page(request, message=TOO_MANY_STARTS, status=429, next_page=safe_next(next_page))
    flow = SignInFlow.new(redirect_uri=callback_url(request, console.public_url), next_page=safe_next(next_page))
    try:
        location = await provider.authorization_url(flow)
    except ProviderUnavailable:
        return sign_in_page(request, message=_unavailable(provider), status=502, next_page=flow.next_page)
    flow_id = await console.sign_ins.begin(flow)
    response = RedirectResponse(location, status_code=302, headers=PAGE_HEADERS)
    response.set_cookie(
        FLOW_COOKIE,
        flow_id,
        max_age=int(FLOW_LIFETIME.total_seconds()),
        path=FLOW_COOKIE_PATH,
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",  # Strict would not come back with the provider's redirect, a navigation from its site
    )
    return response


@router.get("/sign-in/oidc/callback")
async def finish_sign_in(request: Request, code: Param = None, state: Param = None, error: Param = None) -> Response:
    """Take the flow (once), exchange the code, authenticate the ID token as a key, and open a session."""
    console = console_of(request)
    flow_id = request.cookies.get(FLOW_COOKIE)
    flow = await console.sign_ins.take(flow_id) if flow_id else None  # one use, whatever follows
    try:
        session_id, session = await _signed_in(
            request, flow, had_cookie=flow_id is not None, code=code, state=state, error=error
        )
    except SignInFailed as failed:
        log.info("console sign-in through the identity provider refused", reason=failed.reason)
        response: Response = sign_in_page(
            request,
            message=failed.message,
            status=failed.status,
            next_page=flow.next_page if flow else None,
            headers=failed.headers,
        )
    else:
        response = _continue_to(request, session, flow.next_page if flow else safe_next(None))
        response.delete_cookie(SIGN_IN_COOKIE, path=PATH)
        max_age = int((session.expires_at - console.sessions.clock()).total_seconds())
        set_session_cookie(response, request, session_id, max_age=max_age)
    response.delete_cookie(
        FLOW_COOKIE, path=FLOW_COOKIE_PATH, httponly=True, secure=secure_cookies(request), samesite="lax"
    )
    return response


def _continue_to(request: Request, session: Session, next_page: str) -> Response:
    """A page that moves on to ``next_page`` by itself (``<meta http-equiv="refresh">``), not a redirect.

    The session cookie is ``SameSite=Strict``: a redirect would still be part of the navigation the
    provider's site started, and the browser would leave the new cookie out of it. A navigation
    this page starts is the console's own, and carries it.
    """
    return render(request, "signed_in.html", {"next": next_page, "person": session.person})


async def _signed_in(
    request: Request,
    flow: SignInFlow | None,
    *,
    had_cookie: bool,
    code: str | None,
    state: str | None,
    error: str | None,
) -> tuple[str, Session]:
    console = console_of(request)
    provider = console.identity_provider
    if provider is None:
        raise SignInFailed(404, "not_set_up", NOT_SET_UP)
    if error is not None:
        raise SignInFailed(400, "provider_error", f"{provider.name} did not sign you in ({error_code(error)}).")
    if not had_cookie:
        raise SignInFailed(
            400, "no_flow_cookie", "This sign-in did not start in this browser, or its cookie was lost: sign in again."
        )
    if flow is None:
        raise SignInFailed(
            400, "flow_gone", "This sign-in was used already, or took longer than 10 minutes: sign in again."
        )
    if not state or not hmac.compare_digest(state.encode(), flow.state.encode()):
        raise SignInFailed(
            400, "state_mismatch", f"The answer from {provider.name} does not belong to this sign-in: sign in again."
        )
    if not code:
        raise SignInFailed(400, "no_code", f"{provider.name} sent no authorization code: sign in again.")
    id_token = await _exchanged(provider, code, flow)
    principal = await _admitted(request, provider, id_token)
    try:
        claims = token_claims(id_token)  # verified just now by registration: decoding is all that is left
    except ValueError:
        raise SignInFailed(400, "token_unreadable", f"The ID token from {provider.name} could not be read.") from None
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), flow.nonce.encode()):
        raise SignInFailed(
            400, "nonce_mismatch", f"The ID token from {provider.name} was not issued for this sign-in: sign in again."
        )
    if not principal.has("models:read"):
        console.guard.deny(request, principal, status=403, reason="missing scope models:read")
        raise SignInFailed(
            403, "no_models_read", "This account lacks the models:read scope the console needs: ask a platform admin."
        )
    return await console.sessions.create(
        id_token, principal, person=_person(principal, claims), not_after=_expiry(claims)
    )


async def _exchanged(provider: IdentityProvider, code: str, flow: SignInFlow) -> str:
    try:
        return await provider.exchange(code, flow)
    except ProviderRefused as refused:
        message = f"{provider.name} did not accept this sign-in's code ({refused.error}): sign in again."
        raise SignInFailed(400, "code_refused", message) from None
    except ProviderUnavailable:
        raise SignInFailed(502, "provider_unavailable", _unavailable(provider)) from None


async def _admitted(request: Request, provider: IdentityProvider, id_token: str) -> Principal:
    """The token's principal, as the API would admit it (a refusal is the guard's recorded 401)."""
    guard = console_of(request).guard
    try:
        return guard.admit(request, await guard.authenticate_token(request, id_token))
    except Problem as problem:
        if problem.status != 401:  # registration away (a 503 to retry), or over the rate
            raise SignInFailed(problem.status, problem.reason, problem.detail, headers=problem.headers) from None
        message = (
            f"{provider.name} signed you in, but no rule of the platform gives this account access to the "
            "registry: ask a platform admin."
        )
        raise SignInFailed(401, "not_admitted", message) from None


def _person(principal: Principal, claims: dict[str, Any]) -> Person:
    identity = principal.identity
    issuer = identity.issuer if identity is not None else str(claims.get("iss", ""))
    subject = identity.subject if identity is not None else str(claims.get("sub", ""))
    name, email = claims.get("name"), claims.get("email")
    return Person(
        issuer=issuer,
        subject=subject,
        name=name if isinstance(name, str) and name else None,
        email=email if isinstance(email, str) and email else None,
    )


def _expiry(claims: dict[str, Any]) -> datetime | None:
    """The token's ``exp``: the session ends then at the latest."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return None  # beyond any date: the session's own lifetime bounds it


def _unavailable(provider: IdentityProvider) -> str:
    return (
        f"{provider.name} could not be reached, or answered unexpectedly: try again soon, or sign in with an API key."
    )
