"""Requests that carry a body are authenticated before a byte of it is read.

FastAPI reads and parses a route's body before it resolves the route's dependencies, so the
:class:`~shared.http_auth.Guard` alone would let anyone without a key make a service read and
parse up to the body limit. This ASGI middleware answers such requests with the same 401
problem (recorded the same way) first; the body limit (``MAX_BODY_BYTES``, FastAPI's
``max_body_size``) applies only to callers with a valid key.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http_auth import Guard
from shared.problems import Problem, problem_response


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class AuthenticateBeforeBody:
    """Refuse unauthenticated requests to ``/v1`` that have a body, without reading it."""

    def __init__(self, app: ASGIApp, *, guard: Guard, prefix: str = "/v1/") -> None:
        self.app, self.guard, self.prefix = app, guard, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix) and _has_body(scope):
            try:
                await self.guard.authenticate(Request(scope))
            except Problem as problem:
                await problem_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)
