"""``registry export documents``: the RAG document feed as NDJSON on stdout, through the HTTP API."""

from __future__ import annotations

import json
import sys
from typing import Annotated, TextIO

import httpx
import typer

export_app = typer.Typer(help="Export registry data through the HTTP API.", no_args_is_help=True)
NDJSON = "application/x-ndjson"


class ExportFailed(Exception):
    """The API refused the export or the stream ended before its last line."""


def export_documents(
    url: str, api_key: str | None, since: str | None, out: TextIO, *, timeout: float = 60
) -> str | None:
    """Write every document after ``since`` to ``out``, one JSON per line; return the cursor to resume from.

    The stream's last line (``{"next_cursor": …}``, the only one without an ``id``) is not written:
    it is returned, so ``out`` holds documents only.
    """
    headers = {"Accept": NDJSON, **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    params = {"cursor": since} if since else {}
    endpoint = url.rstrip("/") + "/v1/assistant/documents"
    with httpx.stream("GET", endpoint, params=params, headers=headers, timeout=timeout) as response:
        if response.status_code != 200:
            response.read()
            raise ExportFailed(f"{response.status_code}: {_detail(response)}")
        for line in response.iter_lines():
            if not line.strip():
                continue
            item = json.loads(line)
            if "id" not in item:
                cursor = item.get("next_cursor")
                return str(cursor) if cursor else None
            out.write(line + "\n")
    raise ExportFailed("the stream ended before its last line; run the export again from the same --since")


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)
    except ValueError:
        return response.text


@export_app.command("documents")
def documents(
    since: Annotated[str | None, typer.Option(help="Resume after this cursor (printed by the previous export)")] = None,
    url: Annotated[str, typer.Option(envvar="REGISTRY_QUERY_URL", help="The query service")] = "http://127.0.0.1:8080",
    api_key: Annotated[str | None, typer.Option(envvar="REGISTRY_API_KEY", help="Sent as Bearer credential")] = None,
) -> None:
    """Every model you can read as a RAG document (NDJSON on stdout); the resume cursor goes to stderr.

    Tombstones ("deleted": true) are models your team can no longer read: delete them from your
    index. Run again with --since to get only what changed.
    """
    try:
        cursor = export_documents(url, api_key, since, sys.stdout)
    except (ExportFailed, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"next_cursor": cursor}), err=True)
