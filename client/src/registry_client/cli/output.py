"""What the client commands share: the client, exit codes a shell can branch on, tables or JSON on stdout.

Every string from a server passes :mod:`registry_client.cli.terminal` before it is printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any

import httpx
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from registry_client import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    RegistryClient,
    RegistryError,
    Unauthenticated,
    WaitTimedOut,
)
from registry_client.cli.terminal import markup, visible
from registry_client.consistency import consistent, parse_token

ApiKey = Annotated[
    str | None,
    typer.Option(
        envvar="REGISTRY_API_KEY",
        show_envvar=True,
        help="Sent as Bearer credential: an API key, or an OIDC token a trust rule matches (REGISTRY_TEAM: the team"
        " it acts for); service URLs come from REGISTRY_GATEWAY_URL or REGISTRY_<SERVICE>_URL",
    ),
]
Consistency = Annotated[
    str | None,
    typer.Option(
        "--consistency",
        envvar="REGISTRY_CONSISTENCY",
        show_envvar=True,
        help="Consistency token(s), comma-separated, of writes this read must see (a write's X-Registry-Consistency,"
        " `registry produce --wait`): the query service answers once it has them, or 503 after its wait",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON (lists as an array) for scripts")]
Limit = Annotated[int, typer.Option(min=1, help="Print at most this many")]
AsOfText = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="As things stood at this RFC 3339 time with an offset (2026-03-01T02:14:00Z); a future time is now",
    ),
]
DEFAULT_LIMIT = 50
WIDE = 200  # columns when stdout is no terminal: names stay whole in pipes and logs
_REFUSALS = (Forbidden, Unauthenticated, Conflict, Invalid, RateLimited)


class ExitCode(IntEnum):
    """What a shell can branch on (2, a usage error, is Typer's own)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    REFUSED = 4
    TAMPERED = 5  # `registry verify`: local files differ from the version's verified manifest
    UNVERIFIED = 6  # `registry verify`: the version has no verified provenance to check against


def exit_code(error: Exception) -> ExitCode:
    """The exit code of a failed call."""
    if isinstance(error, NotFound):
        return ExitCode.NOT_FOUND
    if isinstance(error, _REFUSALS):
        return ExitCode.REFUSED
    return ExitCode.ERROR


def problem_line(error: Exception) -> str:
    """One line for stderr: the problem's detail, reason and correlation id (control characters made visible)."""
    return visible(_problem(error), lines=False)


def _problem(error: Exception) -> str:
    if isinstance(error, RegistryError):
        facts = [str(error.status)] if error.status else []
        facts += [error.reason] if error.reason else []
        facts += [f"correlation id {error.correlation_id}"] if error.correlation_id else []
        detail = error.detail
        if error.errors:
            detail += ": " + "; ".join(
                f"{'.'.join(map(str, e.get('loc', [])))} {e.get('msg', '')}" for e in error.errors
            )
        return f"error: {detail}" + (f" ({', '.join(facts)})" if facts else "")
    if isinstance(error, httpx.TransportError):
        return f"error: cannot reach the registry: {error!r}"
    return f"error: {error}"


@contextmanager
def registry(api_key: str | None, consistency: str | None = None) -> Iterator[RegistryClient]:
    """A client for one command; a refusal or failure ends the command with its line and exit code.

    Its reads carry the tokens of its own writes and ``consistency`` (tokens handed over).
    """
    if consistency and any(parse_token(token) is None for token in consistency.split(",")):
        raise typer.BadParameter(
            "a token reads r.<model id>.<revision> or d.<model id>.<revision>", param_hint="--consistency"
        )
    waited_for = consistent(consistency) if consistency else nullcontext(())
    try:
        with waited_for, RegistryClient(api_key) as client:
            yield client
    except (RegistryError, httpx.TransportError, WaitTimedOut) as error:
        typer.echo(problem_line(error), err=True)
        raise typer.Exit(exit_code(error)) from None


def stdout() -> Console:
    """Rich on stdout: wide and plain when piped."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else WIDE)


def print_json(result: BaseModel | Sequence[BaseModel]) -> None:
    r"""A result as ``model_dump(mode="json")``; a list as a JSON array (control characters as ``\uXXXX``)."""
    if isinstance(result, BaseModel):
        data: Any = result.model_dump(mode="json")
    else:
        data = [item.model_dump(mode="json") for item in result]
    typer.echo(json.dumps(data, indent=2))  # ASCII only: every control character leaves as \uXXXX


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Rows as a table (``-`` for what is missing); title and cells are shown as text, never read as markup."""
    grid = Table(title=markup(title, lines=False) if title else None, title_justify="left")
    for column in columns:
        grid.add_column(markup(column), overflow="fold")
    for row in rows:
        grid.add_row(*(markup(cell_text(cell)) for cell in row))
    stdout().print(grid)


def fields(title: str, values: Mapping[str, object]) -> None:
    """One record as a two-column table of field and value."""
    table(title, ["field", "value"], [(name, value) for name, value in values.items()])


def cell_text(value: object) -> str:
    """A value as a table cell."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def as_of_time(text: str | None) -> datetime | None:
    """The ``--as-of`` option as an aware datetime, or a usage error for a time without an offset."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an RFC 3339 time", param_hint="--as-of") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give the time's offset (Z for UTC, or +01:00)", param_hint="--as-of")
    return moment
