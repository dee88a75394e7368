"""``registry mcp``: the registry's MCP tools over stdio, for desktop assistants.

The same tools and card resources as ``/mcp`` of the query service (:mod:`registry_client.mcp.tools`),
each forwarding to the HTTP API with the user's key; stdout carries only the MCP protocol. Needs
the ``mcp`` extra (``pip install 'registry-client[mcp]'``).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Annotated

import httpx
import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


async def serve_stdio(*, url: str, api_key: str) -> None:
    """Serve the tools on stdin/stdout until the client closes them."""
    # Imported here: the MCP SDK takes about a second to import, which only this command should pay.
    from registry_client.json_api import JsonApi
    from registry_client.mcp.tools import build_server

    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"User-Agent": "registry-mcp"}) as client:
        api = JsonApi(client, headers={"Authorization": f"Bearer {api_key}"})
        await build_server(lambda _: api).run_stdio_async()


def mcp(
    url: Annotated[str, typer.Option(help="The query service's HTTP API")] = "http://127.0.0.1:8080",
    api_key: Annotated[
        str | None, typer.Option(envvar="REGISTRY_API_KEY", help="Your key (models:read); sent as Bearer credential")
    ] = None,
) -> None:
    """Run a stdio MCP server with the registry's read-only tools, forwarding to the HTTP API with your key."""
    if not api_key:
        console.print("[red]error:[/red] an API key is required: --api-key or REGISTRY_API_KEY")
        raise typer.Exit(2)
    if importlib.util.find_spec("mcp") is None:
        console.print("[red]error:[/red] `registry mcp` needs the mcp extra: pip install 'registry-client\\[mcp]'")
        raise typer.Exit(2)
    asyncio.run(serve_stdio(url=url, api_key=api_key))
