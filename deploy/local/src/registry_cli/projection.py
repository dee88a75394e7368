"""``registry projection rebuild``: the query service's read model built again from nothing.

The query service reads every owner's whole event log (registration's and the deploy-tracker's
``GET /internal/v1/events``), swaps the new model in and rewrites what it persisted. The route is
internal (the gateway does not route it): this talks to the query service itself, with a platform
admin's key or the services' credential.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import httpx
import typer

from registry_client.cli.output import ApiKey
from registry_client.cli.terminal import visible
from registry_client.errors import RegistryError
from registry_client.json_api import JsonApi

REBUILD_PATH = "/internal/v1/projection/rebuild"
projection_app = typer.Typer(help="The query service's read model.", no_args_is_help=True)
QueryUrl = Annotated[
    str, typer.Option("--query-url", envvar="REGISTRY_QUERY_URL", help="The query service itself (not the gateway)")
]
ServiceToken = Annotated[
    str | None,
    typer.Option(
        "--service-token", envvar="INTERNAL_API_TOKEN", help="The services' credential, instead of a platform admin key"
    ),
]


@projection_app.command("rebuild")
def rebuild(
    query_url: QueryUrl = "http://127.0.0.1:8080",
    api_key: ApiKey = None,
    service_token: ServiceToken = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the rebuild")] = 600,
) -> None:
    """Rebuild the read model from the owners' event logs and print what it now holds (JSON)."""
    headers = {"X-Registry-Service-Token": service_token} if service_token else {}
    if api_key and not service_token:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        answer = asyncio.run(_rebuild(query_url, headers, timeout))
    except RegistryError as exc:
        typer.echo(f"error: {visible(exc.explanation)}" + (f" ({exc.status})" if exc.status else ""), err=True)
        raise typer.Exit(4 if exc.status in (401, 403) else 1) from None
    typer.echo(json.dumps(answer, indent=2))


async def _rebuild(query_url: str, headers: dict[str, str], timeout: float) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=query_url, timeout=timeout) as http:
        return await JsonApi(http, headers=headers).send("POST", REBUILD_PATH)
