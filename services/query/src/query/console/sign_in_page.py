"""The sign-in page and the session cookie, shared by the two ways in: an API key, or the identity provider."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from query.console.web import COOKIE, PATH, SIGN_IN_COOKIE, console_of, new_token, render, safe_next

SIGN_IN_FORM_SECONDS = 600


def secure_cookies(request: Request) -> bool:
    """Whether the console's cookies are ``Secure``: over HTTPS (or behind a trusted TLS proxy), or when set so."""
    return request.url.scheme == "https" or console_of(request).secure_cookies


def sign_in_page(
    request: Request,
    *,
    message: str | None = None,
    status: int = 200,
    next_page: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form, with its own token (cookie and hidden field: there is no session to hold one yet).

    ``next_page`` is where signing in leads (by default the request's own ``next``), kept a console path;
    ``headers`` are a refusal's own (a 503's ``Retry-After``).
    """
    token = new_token()
    provider = console_of(request).identity_provider
    context = {
        "sign_in_token": token,
        "next": safe_next(next_page if next_page is not None else request.query_params.get("next")),
        "message": message,
        "provider_name": provider.name if provider is not None else None,
    }
    response = render(request, "sign_in.html", context, status=status)
    response.headers.update(headers or {})
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=SIGN_IN_FORM_SECONDS,
        path=PATH,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
    )
    return response


def set_session_cookie(response: Response, request: Request, session_id: str, *, max_age: int) -> None:
    """Give the browser the session id: script cannot read it, and no other site's page or form sends it."""
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max_age,
        path=PATH,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
    )
