"""The MCP SDK's side of ``/mcp``: the tools' server and its Streamable HTTP transport.

Only :mod:`query.mcp.server` imports this, when the first keyed request reaches ``/mcp``: the SDK
and its types cost the query service about 30 MB, which a registry no assistant talks to never
pays.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from registry_client.json_api import JsonApi
from registry_client.mcp.tools import ApiOf, build_server


def tools_server(api_client: httpx.AsyncClient, *, forwarded: tuple[str, ...]) -> MCPServer:
    """The registry's tools, each call answered through ``api_client`` with the MCP request's ``forwarded`` headers."""
    return build_server(_forwarding(api_client, forwarded))


def streamable_app(server: MCPServer, *, path: str) -> ASGIApp:
    """A fresh transport (and with it a fresh session manager) for ``server`` at ``path``."""
    return server.streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,
        json_response=True,
        # DNS-rebinding protection checks Host/Origin against localhost names, which a replica
        # behind a Service name would fail; it guards keyless local servers, and every request
        # here must carry an API key a rebinding page does not have.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


def _forwarding(client: httpx.AsyncClient, forwarded: tuple[str, ...]) -> ApiOf:
    """Each tool call's API: ``client`` with the key and correlation id of the MCP request."""

    def api_of(ctx: Context) -> JsonApi:
        headers: Mapping[str, str] = ctx.headers or {}
        return JsonApi(client, headers={name: headers[name] for name in forwarded if name in headers})

    return api_of
