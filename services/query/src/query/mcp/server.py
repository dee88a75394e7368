"""The MCP server of the query service: Streamable HTTP at ``/mcp``, keyed like ``/v1``.

- A request without a valid key gets the 401 problem of ``/v1`` (recorded the same way, by the
  app's :class:`~shared.chassis.http_auth.Guard`) before the MCP transport reads it; a request
  with one is rate-limited like any other.
- Each tool answers through the service's own routes, called in-process with the MCP request's
  ``Authorization`` (or ``X-API-Key``) and correlation id: team isolation, rate limits, metrics
  and access events are those of the HTTP API, because it is the HTTP API.
- Stateless, with JSON answers: no session lives in a replica, so any replica can answer any
  request. The SDK's session manager still needs its task group running; the app's lifespan runs
  it as a background task (mounted sub-apps get no lifespan of their own).
- Loaded when first asked for: the SDK (:mod:`query.mcp.transport`) is imported, in a worker
  thread, when the first keyed request reaches ``/mcp``, which waits for it (about a third of a
  second) rather than being refused. Until then the query service does not carry its ~30 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import httpx
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from registry_contract import correlation
from shared.chassis.http_app import Service
from shared.chassis.http_auth import Guard
from shared.chassis.problems import CORRELATION_HEADER, Problem, problem_response

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

PATH = "/mcp"
# The request headers a tool's API call carries over from the MCP request.
FORWARDED = ("authorization", "x-api-key", CORRELATION_HEADER.lower())
# How long a request waits for the session manager to run before 503: the first, for the SDK to
# load and start; a later one, for a restart (a stopping service keeps no request long).
FIRST_START_WAIT_SECONDS = 10.0
RESTART_WAIT_SECONDS = 1.0


class KeyedEndpoint:
    """``/mcp``: the caller's key is checked (and its rate limit taken) before the MCP transport runs."""

    def __init__(self, *, guard: Guard) -> None:
        self.guard = guard
        self.app: ASGIApp | None = None  # the SDK's transport, set by the task that runs its sessions
        self.wanted = asyncio.Event()  # set by the first keyed request: that is when the SDK loads
        self.running = asyncio.Event()  # set while the SDK's session manager runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.guard(Request(scope))
            app = await self._started()
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        await app(_with_correlation_id(scope), receive, send)

    async def _started(self) -> ASGIApp:
        self.wanted.set()
        wait = FIRST_START_WAIT_SECONDS if self.app is None else RESTART_WAIT_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.running.wait(), wait)
        if not self.running.is_set() or self.app is None:
            raise Problem("not_ready", "the MCP endpoint is starting or stopping", headers={"Retry-After": "1"})
        return self.app


def _with_correlation_id(scope: Scope) -> Scope:
    """``scope`` whose correlation header is the id this request is handled under (bound by the app)."""
    current = correlation.current()
    if current is None:
        return scope
    name = CORRELATION_HEADER.lower().encode()
    headers: list[tuple[bytes, bytes]] = [(k, v) for k, v in scope["headers"] if k != name]
    return {**scope, "headers": [*headers, (name, current.encode())]}


def _load_sdk() -> tuple[Callable[..., MCPServer], Callable[..., ASGIApp]]:
    """The SDK's two entry points this endpoint uses: the tools' server and its transport."""
    from query.mcp.transport import streamable_app, tools_server  # here: loaded when first asked for

    return tools_server, streamable_app


def mount_mcp(service: Service) -> None:
    """Serve the registry's MCP tools and card resources at ``/mcp`` of ``service``'s app."""
    # In-process: the ASGI app itself, no socket and no lifespan (the running app's is the one).
    # Each tool call runs its route with the caller's key; the MCP request took the caller's rate
    # token, so the call says it is internal and takes none (the limit counts tool calls once).
    api_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app),
        base_url="http://query.internal",
        headers=service.guard.internal_headers,
    )
    endpoint = KeyedEndpoint(guard=service.guard)
    # A route, not a mount: a mount would redirect POST /mcp to /mcp/.
    service.app.router.routes.append(Route(PATH, endpoint=endpoint, include_in_schema=False))
    server: MCPServer | None = None

    async def run_sessions() -> None:
        nonlocal server
        await endpoint.wanted.wait()
        # In a worker thread: the import would take a third of a second of the event loop's reads.
        tools_server, streamable_app = await asyncio.to_thread(_load_sdk)
        if server is None:
            server = tools_server(api_client, forwarded=FORWARDED)
        # The SDK's session manager runs once per instance: each run (a restart after a failure
        # too) gets a new transport, and with it a new session manager.
        endpoint.app = streamable_app(server, path=PATH)
        async with server.session_manager.run():
            endpoint.running.set()
            try:
                await anyio.sleep_forever()
            finally:
                endpoint.running.clear()

    service.in_background("mcp", run_sessions)
    service.on_stop("mcp-client", api_client.aclose)
