"""The ``registry`` command's reference, from the Typer app its console script runs.

The app is found through the ``registry`` entry point, not by module path: the command's code may
move between packages, and packages add commands to it (the local stack's ``up``, ``backup``…).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer
import typer.main
from typer.cli import get_docs_for_click
from typer.models import Context

INTRO = """\
Every command and option of `registry`, generated from the command itself (`python -m tools.docs`).
The commands come from the packages installed: `registry-client` brings the reads, writes,
`produce`, `keys`, `trust-rules`, `export`, `import` and `mcp`; the local stack (`registry-stack`) adds `up`,
`backup`, `restore`, `dlq`, `projection`, `audit verify` and `bench`. How to use them together:
[the command line](../guides/cli.md).
"""


def registry_app() -> typer.Typer:
    """The Typer app behind the installed ``registry`` console script."""
    [entry] = [entry for entry in entry_points(group="console_scripts") if entry.name == "registry"]
    app = entry.load()
    if not isinstance(app, typer.Typer):
        raise TypeError(f"the registry entry point {entry.value} is not a Typer app")
    return app


def page() -> str:
    """The CLI reference page (markdown)."""
    command = typer.main.get_command(registry_app())
    text = get_docs_for_click(
        obj=command, ctx=Context(command, info_name="registry"), name="registry", title="Command line reference"
    )
    title, _, body = text.partition("\n\n")
    return f"{title}\n\n{INTRO}\n{body.rstrip()}\n"
