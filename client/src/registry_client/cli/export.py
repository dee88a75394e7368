"""``registry export documents``: the RAG document feed as NDJSON on stdout, through the Python client."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, TextIO

import httpx
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from registry_client import RegistryClient
from registry_client.cli.output import exit_code, problem_line
from registry_client.cli.terminal import json_text
from registry_client.errors import RegistryError
from registry_contract.assistant_views import StreamEnd

export_app = typer.Typer(help="Export registry data through the HTTP API.", no_args_is_help=True)


class ExportFailed(Exception):
    """The stream ended before its last line."""


def export_documents(client: RegistryClient, since: str | None, out: TextIO, progress: Progress) -> str | None:
    """Write every document after ``since`` to ``out``, one JSON per line; return the cursor to resume from.

    The stream's last item (``{"next_cursor": …}``) is not written: it is returned, so ``out``
    holds documents only. DEL, C1 and bidi controls, which JSON leaves raw, are written as escapes.
    """
    task = progress.add_task("documents exported", total=None)
    for item in client.stream_documents(cursor=since):
        if isinstance(item, StreamEnd):
            return item.next_cursor
        out.write(json_text(item.model_dump_json()) + "\n")
        progress.advance(task)
    raise ExportFailed("the stream ended before its last line; run the export again from the same --since")


@export_app.command("documents")
def documents(
    since: Annotated[str | None, typer.Option(help="Resume after this cursor (printed by the previous export)")] = None,
    cursor_file: Annotated[
        Path | None,
        typer.Option(
            help="Resume after the cursor kept in this file (when it exists; --since wins) and keep the new one in it"
        ),
    ] = None,
    url: Annotated[str, typer.Option(envvar="REGISTRY_QUERY_URL", help="The query service")] = "http://127.0.0.1:8080",
    api_key: Annotated[str | None, typer.Option(envvar="REGISTRY_API_KEY", help="Sent as Bearer credential")] = None,
) -> None:
    """Every model you can read as a RAG document (NDJSON on stdout); the resume cursor goes to stderr.

    Tombstones ("deleted": true) are models your team can no longer read: delete them from your
    index. Run again with --since (or the same --cursor-file) to get only what changed. A count of
    documents runs on stderr. An empty --since is refused: it would export everything again.
    """
    if since is not None and not since.strip():
        typer.echo("error: --since is empty: give the next_cursor an earlier export printed, or leave it out", err=True)
        raise typer.Exit(2)
    if since is None and cursor_file is not None and cursor_file.is_file():
        since = cursor_file.read_text().strip() or None
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} {task.description}"))
    try:
        with (
            RegistryClient(api_key, query_url=url) as client,
            Progress(*columns, console=Console(stderr=True), transient=True) as progress,
        ):
            cursor = export_documents(client, since, sys.stdout, progress)
    except ExportFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (RegistryError, httpx.TransportError) as exc:
        typer.echo(problem_line(exc), err=True)
        raise typer.Exit(exit_code(exc)) from None
    if cursor_file is not None and cursor:
        cursor_file.write_text(cursor + "\n")
    typer.echo(json.dumps({"next_cursor": cursor}), err=True)
