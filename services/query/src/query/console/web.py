"""What every console page and action stands on: the signed-in visit, rendering, forms and refusals.

A console request is a request of the API key (or ID token) its session holds: it is authenticated
again (a revoked key or an expired token ends the session at once), takes one rate-limit token,
and every read and write it causes is a call to the registry's own API with that credential, so
team isolation, scopes and audit are exactly those of the API.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from query.console import formatting
from query.console.identity_provider import IdentityProvider
from query.console.sessions import Session, Sessions
from query.console.sign_ins import SignInFlows
from registry_client.json_api import JsonApi
from registry_contract import catalog, correlation
from registry_contract.auth import Principal
from registry_contract.versioning import precedence_key
from shared.chassis.federation import UNAVAILABLE, TokenRefused, looks_like_token
from shared.chassis.http_auth import Guard, credentials_unavailable
from shared.chassis.keystore import KeyIntrospectionUnavailable
from shared.chassis.problems import CORRELATION_HEADER, Problem

COOKIE = "mr_console"
SIGN_IN_COOKIE = "mr_console_sign_in"  # the sign-in form's own CSRF token (there is no session yet)
PATH = "/console"
MAX_FORM_FIELDS = 16
FRAGMENT_HEADER = "x-console-fragment"  # sent by console.js when it asks for a part of a page

# Nothing but the service's own scripts, styles and images; no framing, no form posts elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # pages hold one team's data: no shared or back-button caches
}
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
formatting.install(templates.env)


@dataclass
class Console:
    """The console's parts, on ``app.state.console``."""

    sessions: Sessions
    guard: Guard
    reads: httpx.AsyncClient  # the query service itself, in-process
    registration: httpx.AsyncClient
    audit: httpx.AsyncClient
    secure_cookies: bool
    sign_ins: SignInFlows
    identity_provider: IdentityProvider | None = None  # None: API keys are the only way in
    public_url: str | None = None  # the console's external base URL (QUERY_CONSOLE_PUBLIC_URL), if set


@dataclass
class Visit:
    """One signed-in request: the session, its key's principal, and the APIs called with that key."""

    session_id: str
    session: Session
    principal: Principal
    reads: JsonApi
    registration: JsonApi
    audit: JsonApi

    def can(self, scope: str) -> bool:
        """Whether the key holds ``scope`` (forms are shown only then; the API decides regardless)."""
        return self.principal.has(scope)


class SignInNeeded(Exception):
    """No live session: pages redirect to the sign-in form, fragments answer 401."""


class ConsoleRefusal(Exception):
    """A page or action that cannot be served, shown as the error page with ``status``."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def console_of(request: Request) -> Console:
    """The console of the app serving ``request``."""
    console: Console = request.app.state.console
    return console


async def visit(request: Request) -> Visit:
    """The dependency of every signed-in route: the session's key, authenticated and rate-limited."""
    console = console_of(request)
    session_id = request.cookies.get(COOKIE)
    is_fragment = FRAGMENT_HEADER in request.headers
    session = await console.sessions.open(session_id, take_flash=not is_fragment) if session_id else None
    if session_id is None or session is None:
        raise SignInNeeded
    principal = await authenticated_again(console.guard, session.api_key)
    if principal is None:  # revoked or expired since sign-in
        await console.sessions.close(session_id)
        raise SignInNeeded
    try:
        console.guard.admit(request, principal)
    except Problem as problem:
        raise refusal_of(problem) from None
    headers = {"Authorization": f"Bearer {session.api_key}"}
    if (current := correlation.current()) is not None:
        headers[CORRELATION_HEADER] = current  # one operation, one id, across every service it reaches
    return Visit(
        session_id=session_id,
        session=session,
        principal=principal,
        # The page took the caller's token: its own reads say they are internal and take none.
        # Nor are they recorded as accesses of their own: the page view is (one entry, not seven).
        reads=JsonApi(console.reads, headers=headers | console.guard.internal_unrecorded_headers),
        registration=JsonApi(console.registration, headers=headers),
        audit=JsonApi(console.audit, headers=headers),
    )


async def authenticated_again(guard: Guard, credential: str) -> Principal | None:
    """The principal of a session's API key or ID token now; ``None`` once revoked, expired or no longer admitted.

    Silent, unlike the guard's 401: the visitor is sent to sign in again, not refused. While
    registration cannot answer, the session is kept and the page is a 503 to retry: an outage
    does not sign anyone out.
    """
    if not looks_like_token(credential):
        try:
            return await guard.keystore.authenticate(credential)
        except KeyIntrospectionUnavailable:
            raise refusal_of(credentials_unavailable("API keys")) from None
    if guard.federation is None:
        return None
    try:
        return await guard.federation.authenticate(credential, team=None)
    except TokenRefused as refused:
        if refused.reason == UNAVAILABLE:
            raise refusal_of(credentials_unavailable("tokens")) from None
        return None


def refusal_of(problem: Problem) -> ConsoleRefusal:
    """The console's error page for an API refusal: its status, detail and headers (a Retry-After)."""
    return ConsoleRefusal(problem.status, problem.detail, headers=problem.headers)


def render(
    request: Request, template: str, context: dict[str, Any], *, visit: Visit | None = None, status: int = 200
) -> HTMLResponse:
    """A page (or fragment) with the console's security headers."""
    common: dict[str, Any] = {"visit": visit, "path": PATH}
    if visit is not None:
        common |= {"principal": visit.principal, "csrf_token": visit.session.csrf_token, "flash": visit.session.flash}
    response = templates.TemplateResponse(request, template, common | context, status_code=status)
    response.headers.update(PAGE_HEADERS)
    return response


def redirect(location: str) -> RedirectResponse:
    """See other: the answer to every form post, so a reload never posts twice."""
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in form, coming back to this page afterwards; a fragment gets a 401 its script follows."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PATH}/sign-in?{urlencode({'next': target})}"
    if FRAGMENT_HEADER in request.headers:
        return Response(status_code=401, headers={"X-Console-Sign-In": location, **PAGE_HEADERS})
    return redirect(location)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site (no open redirect)."""
    if target and target.startswith(f"{PATH}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PATH}/search"


async def form_of(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form post (the body size is already bounded by the app)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise ConsoleRefusal(415, "the console accepts only its own forms")
    try:
        fields = parse_qs((await request.body()).decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleRefusal(400, "the form could not be read") from None
    return {name: values[-1] for name, values in fields.items()}


def check_csrf(request: Request, visit: Visit, form: dict[str, str]) -> None:
    """Refuse a post whose token is not the session's: it came from another site, or an old page."""
    if not hmac.compare_digest(form.get("csrf_token", "").encode(), visit.session.csrf_token.encode()):
        console_of(request).guard.deny(request, visit.principal, status=403, reason="console form without its token")
        raise ConsoleRefusal(403, "this form was not sent from the console page it belongs to; reload it and retry")


def segment(value: str) -> str:
    """``value`` as one path segment of an API path the console builds: ``/``, ``?``, ``#``, ``%`` and dots quoted.

    Without it a query parameter such as ``version=../../other/m/versions/1.0.0`` walks the
    in-process read to another path (httpx removes dot segments). ``@`` stays: ``versions/@alias``.
    """
    quoted = quote(value, safe="@")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


_SLUG = re.compile(catalog.SLUG_PATTERN)


def checked_version(value: str) -> str:
    """``value`` if it is a version the API can look up (SemVer 2.0, ``latest`` or ``@alias``), else a 422 page.

    Quoting by :func:`segment` is not enough: the in-process transport (and uvicorn) decode ``%2F``
    before routing, so ``version=1.0.0/lineage`` would fetch another route as if it were a version.
    """
    if value == "latest" or (value.startswith("@") and _SLUG.match(value[1:])):
        return value
    try:
        precedence_key(value)
    except ValueError:
        raise ConsoleRefusal(422, "a version is a SemVer 2.0 version (1.4.0), latest or @alias") from None
    return value


def checked_alias(value: str) -> str:
    """``value`` if it is an alias name (a lowercase slug), else a 422 page."""
    if not _SLUG.match(value):
        raise ConsoleRefusal(422, "an alias is a lowercase slug (letters, digits and dashes)")
    return value


def new_token() -> str:
    """A fresh random token (sign-in form, idempotency keys of action forms)."""
    return secrets.token_urlsafe(24)
