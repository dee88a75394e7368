"""The edge of every HTTP service: bodies are capped and authenticated before they are read.

FastAPI reads and parses a route's body before it resolves the route's dependencies, so the
:class:`~shared.chassis.http_auth.Guard` alone would let anyone without a key make a service read and
parse whatever it sends. This ASGI middleware, in front of the routes:

- answers 413 problem+json when ``Content-Length`` is over ``MAX_BODY_BYTES``, before reading;
- answers a request to ``/v1`` that has a body and no valid key with the same 401 the Guard
  gives (recorded the same way), before reading;
- stops a body without a declared length (chunked) as soon as it passes the cap (413).

(FastAPI's own ``max_body_size`` answers in text/plain, replacing any problem+json response.)
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.chassis.http_auth import Guard
from shared.chassis.problems import Problem, problem_response, status_problem
from shared.chassis.settings import CommonSettings


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the cap; FastAPI re-raises HTTP errors."""

    def __init__(self, limit: int) -> None:
        setting = CommonSettings.env_name("max_body_bytes")
        super().__init__(413, f"the request body is over the limit of {limit} bytes (the service's {setting})")


def _body(scope: Scope) -> tuple[bool, int | None]:
    """Whether the request has a body, and its declared length (``None``: chunked or unreadable)."""
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = True
    return chunked or bool(length), length


class RequestBounds:
    """Cap request bodies and authenticate before reading them (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, guard: Guard, max_body_bytes: int, prefix: str = "/v1/") -> None:
        self.app, self.guard, self.limit, self.prefix = app, guard, max_body_bytes, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        has_body, declared = _body(scope) if scope["type"] == "http" else (False, None)
        if not has_body:
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > self.limit:
            too_large = BodyTooLarge(self.limit)
            await problem_response(status_problem(too_large.status_code, too_large.detail))(scope, receive, send)
            return
        if scope["path"].startswith(self.prefix):
            try:
                await self.guard.authenticate(Request(scope))
            except Problem as problem:
                await problem_response(problem)(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)
