"""The web console at ``/console``: find, inspect, approve and promote models in a browser.

Server-rendered pages over the registry's own API (see :mod:`query.console.web`), a few lines of
plain JavaScript for search as you type, and every asset served from here under a strict
Content-Security-Policy.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import Request
from fastapi.responses import Response

from query.config import QuerySettings
from query.console import actions, compare_page, oidc_sign_in, pages
from query.console.identity_provider import IdentityProvider
from query.console.sessions import Sessions
from query.console.sign_ins import SignIns
from query.console.storage import CONSOLE_SESSIONS, CONSOLE_SIGN_INS, INDEXES
from query.console.web import PAGE_HEADERS, PATH, Console, ConsoleRefusal, SignInNeeded, render, sign_in_redirect
from registry_client.errors import RegistryError
from shared.chassis.http_app import Service
from shared.chassis.mongo import ensure_indexes

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CALL_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def mount_console(service: Service, settings: QuerySettings) -> None:
    """Serve the console from ``service``'s app, its actions going to registration, its audit page to audit."""
    app = service.app
    reads = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query.internal")
    registration = httpx.AsyncClient(base_url=str(settings.registration_url), timeout=CALL_TIMEOUT)
    audit = httpx.AsyncClient(base_url=str(settings.audit_url), timeout=CALL_TIMEOUT)
    discovery = httpx.AsyncClient(timeout=CALL_TIMEOUT)  # the identity provider's discovery document
    app.state.console = Console(
        sessions=Sessions(
            service.db[CONSOLE_SESSIONS],
            lifetime=timedelta(hours=settings.console_session_hours),
            idle=timedelta(minutes=settings.console_idle_minutes),
        ),
        guard=service.guard,
        reads=reads,
        registration=registration,
        audit=audit,
        secure_cookies=settings.console_secure_cookies,
        sign_ins=SignIns(service.db[CONSOLE_SIGN_INS]),
        identity_provider=IdentityProvider.of(settings, discovery),
        public_url=str(settings.console_public_url) if settings.console_public_url else None,
    )

    async def create_indexes() -> None:  # the sessions' and sign-ins' expiry: the console's own collections
        await ensure_indexes(service.db, INDEXES)

    service.on_start(create_indexes)
    app.include_router(pages.router)
    app.include_router(compare_page.router)
    app.include_router(actions.router)
    app.include_router(oidc_sign_in.router)
    assets = {name: (STATIC / name).read_bytes() for name in ASSETS}

    @app.get(f"{PATH}/static/{{name}}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            return Response(status_code=404, headers=PAGE_HEADERS)
        headers = PAGE_HEADERS | {"Cache-Control": "public, max-age=3600"}
        return Response(assets[name], media_type=ASSETS[name], headers=headers)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, _: SignInNeeded) -> Response:
        return sign_in_redirect(request)

    @app.exception_handler(ConsoleRefusal)
    async def _refused(request: Request, exc: ConsoleRefusal) -> Response:
        response = render(request, "error.html", {"status": exc.status, "message": exc.message}, status=exc.status)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RegistryError)
    async def _api_refused(request: Request, exc: RegistryError) -> Response:
        # A page whose main read was refused: the API's own status and words (404 for what is hidden).
        status = exc.status or 502
        return render(request, "error.html", {"status": status, "message": exc.explanation}, status=status)

    clients = {"reads": reads, "registration": registration, "audit": audit, "discovery": discovery}
    for name, client in clients.items():
        service.on_stop(f"console-{name}", client.aclose)
