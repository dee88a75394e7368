"""History commands: an alias's moves, an environment's timeline, a model's timeline.

(The ``--as-of`` option of the read commands is in :mod:`registry_client.cli.output`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import TypeVar

import typer

from registry_client.cli.output import DEFAULT_LIMIT, ApiKey, AsJson, Consistency, Limit, print_json, registry, table
from registry_contract import catalog

history_app = typer.Typer(
    help="A model's past (scope models:read): alias moves, an environment's timeline, the model's timeline.",
    no_args_is_help=True,
)
T = TypeVar("T")


def _first(pages: Callable[[int], Iterable[T]], limit: int) -> list[T]:
    """The first ``limit`` items of a history, asked in pages no larger than needed (``pages`` takes the page size)."""
    return list(islice(pages(min(limit, catalog.MAX_PAGE_SIZE)), limit))


@history_app.command("alias")
def alias_history(
    team: str,
    name: str,
    alias: str,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """Every set, move and removal of an alias, oldest first."""
    with registry(api_key, consistency) as client:
        found = _first(lambda size: client.alias_history(team, name, alias, page_size=size), limit)
    if as_json:
        print_json(found)
        return
    rows = [(m.at, m.action, m.previous_version, m.version, m.by, m.correlation_id) for m in found]
    table(f"{team}/{name} @{alias}", ["at", "action", "from", "to", "by", "correlation id"], rows)


@history_app.command("environment")
def environment_timeline(
    team: str,
    name: str,
    environment: str,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """Every status change in one environment, across the model's versions, oldest first."""
    with registry(api_key, consistency) as client:
        found = _first(lambda size: client.environment_timeline(team, name, environment, page_size=size), limit)
    if as_json:
        print_json(found)
        return
    rows = [(c.at, c.version, c.previous_status, c.status, c.occurred_at, c.report_id) for c in found]
    table(f"{team}/{name} in {environment}", ["at", "version", "from", "to", "occurred", "report"], rows)


@history_app.command("model")
def model_timeline(
    team: str,
    name: str,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """The model's timeline, newest first: alias moves, approvals, deletions and status changes."""
    with registry(api_key, consistency) as client:
        found = _first(lambda size: client.model_timeline(team, name, page_size=size), limit)
    if as_json:
        print_json(found)
        return
    rows = [(e.at, e.kind, e.version, e.subject, e.previous, e.current, e.by) for e in found]
    table(f"{team}/{name}", ["at", "kind", "version", "alias/environment", "from", "to", "by"], rows)
