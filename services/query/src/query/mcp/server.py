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
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio
import httpx
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from query.mcp.api import RegistryApi
from query.mcp.tools import ApiOf, build_server
from shared.chassis.http_app import Service
from shared.chassis.http_auth import Guard
from shared.chassis.problems import CORRELATION_HEADER, Problem, problem_response
from shared.contract import correlation

PATH = "/mcp"
# The request headers a tool's API call carries over from the MCP request.
FORWARDED = ("authorization", "x-api-key", CORRELATION_HEADER.lower())


class KeyedEndpoint:
    """``/mcp``: the caller's key is checked (and its rate limit taken) before the MCP transport runs."""

    def __init__(self, app: ASGIApp, *, guard: Guard) -> None:
        self.app, self.guard = app, guard
        self.running = False  # set while the SDK's session manager runs (the app's lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.guard(Request(scope))
            if not self.running:
                raise Problem("not_ready", "the MCP endpoint is starting or stopping", headers={"Retry-After": "1"})
        except Problem as problem:
            await problem_response(problem)(scope, receive, send)
            return
        await self.app(_with_correlation_id(scope), receive, send)


def _with_correlation_id(scope: Scope) -> Scope:
    """``scope`` whose correlation header is the id this request is handled under (bound by the app)."""
    current = correlation.current()
    if current is None:
        return scope
    name = CORRELATION_HEADER.lower().encode()
    headers: list[tuple[bytes, bytes]] = [(k, v) for k, v in scope["headers"] if k != name]
    return {**scope, "headers": [*headers, (name, current.encode())]}


def _forwarding(client: httpx.AsyncClient) -> ApiOf:
    """Each tool call's API: ``client`` with the key and correlation id of the MCP request."""

    def api_of(ctx: Context) -> RegistryApi:
        headers: Mapping[str, str] = ctx.headers or {}
        return RegistryApi(client, headers={name: headers[name] for name in FORWARDED if name in headers})

    return api_of


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
    server = build_server(_forwarding(api_client))

    def transport() -> ASGIApp:
        return server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            # DNS-rebinding protection checks Host/Origin against localhost names, which a replica
            # behind a Service name would fail; it guards keyless local servers, and every request
            # here must carry an API key a rebinding page does not have.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    endpoint = KeyedEndpoint(transport(), guard=service.guard)
    # A route, not a mount: a mount would redirect POST /mcp to /mcp/.
    service.app.router.routes.append(Route(PATH, endpoint=endpoint, include_in_schema=False))

    runs = 0

    async def run_sessions() -> None:
        # The SDK's session manager runs once per instance: a run after a failure (the chassis
        # restarts this task) gets a new transport, and with it a new session manager.
        nonlocal runs
        if runs:
            endpoint.app = transport()
        runs += 1
        async with server.session_manager.run():
            endpoint.running = True
            try:
                await anyio.sleep_forever()
            finally:
                endpoint.running = False

    service.in_background("mcp", run_sessions)
    service.on_stop("mcp-client", api_client.aclose)
