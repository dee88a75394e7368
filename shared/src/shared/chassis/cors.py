"""CORS for browser clients of the HTTP APIs: listed origins only, with credentials.

Outermost on every service, so a preflight is answered before authentication and body limits
(a browser sends it without the key). The request headers allowed are those the services read;
the response headers exposed are those a client acts on. Never on ``/console``: the web console
authenticates by cookie, and its pages and forms are for its own origin only (with credentials
allowed, a listed origin could otherwise read a signed-in user's pages).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.chassis.problems import CORRELATION_HEADER

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "X-API-Key",
    "Content-Type",
    "Prefer",  # the deploy bridge's ``Prefer: wait=<s>``
    CORRELATION_HEADER,
    "Idempotency-Key",
    "Mcp-Protocol-Version",  # sent by MCP clients on every Streamable HTTP request
    "X-Registry-Consistency",  # a read waiting for a write's revision
)
# X-Registry-Consistency: the revision a write answers with, for the reads that follow it.
EXPOSED_HEADERS = (CORRELATION_HEADER, "Retry-After", "Location", "Preference-Applied", "X-Registry-Consistency")
PREFLIGHT_MAX_AGE = 600
NO_CORS_PREFIX = "/console"  # the cookie-authenticated console: same origin only


class ListedOrigins(CORSMiddleware):
    """Starlette's CORS middleware, except that a request from an origin not listed passes untouched.

    Starlette still adds ``Access-Control-Allow-Credentials`` and the exposed headers to such a
    request's response, and answers its preflight with the allowed methods and headers: nothing a
    browser would act on, but the policy told to anyone who asks. Here such requests get no CORS
    header at all (a preflight from them is then an ordinary ``OPTIONS``: 405).
    """

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        if "*" in origins:  # CommonSettings refuses it too: a wildcard with credentials hands out keys
            raise ValueError("CORS origins must be listed explicitly")
        super().__init__(
            app,
            allow_origins=list(origins),
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            allow_credentials=True,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if _under(scope["path"], NO_CORS_PREFIX):
                await self.app(scope, receive, send)
                return
            origin = Headers(scope=scope).get("origin")
            if origin is None or not self.is_allowed_origin(origin):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")
