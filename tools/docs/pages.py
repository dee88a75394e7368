"""Every generated page, and how they compare with the committed ones."""

from __future__ import annotations

from pathlib import Path

from tools.docs import cli_reference, events_reference, http_reference, settings_reference
from tools.docs.markdown import escape_outside_code

DOCS = Path(__file__).resolve().parents[2] / "docs"
GENERATED = "reference"  # everything under docs/reference/ is written by this module, nothing else

INDEX = """\
# Reference

Generated from the code (`python -m tools.docs`; `--check` says what is stale, and the test suite
runs that check), so each page says what the code does today:

- [Command line](cli.md): every `registry` command and option, from the Typer app.
- [HTTP API](http/index.md): every route of the four services, from their OpenAPI documents, and
  the catalogue of refusals.
- [Events](events.md): every Kafka topic and message type, from the AsyncAPI documents.
- [Settings](settings.md): every environment variable, from the settings classes.
"""


def generated() -> dict[str, str]:
    """Every generated file's content, by its path under ``docs/``."""
    return {
        f"{GENERATED}/index.md": INDEX,
        f"{GENERATED}/cli.md": escape_outside_code(cli_reference.page()),
        f"{GENERATED}/settings.md": settings_reference.page(),
        **events_reference.pages(),
        **http_reference.pages(),
    }


def committed(docs: Path = DOCS) -> dict[str, str]:
    """The generated files as they are in the working tree."""
    root = docs / GENERATED
    return {path.relative_to(docs).as_posix(): path.read_text() for path in sorted(root.rglob("*")) if path.is_file()}


def stale(pages: dict[str, str], docs: Path = DOCS) -> list[str]:
    """Paths (under ``docs/``) that differ from ``pages``, are missing, or are no longer generated."""
    present = committed(docs)
    return sorted(path for path in pages.keys() | present.keys() if pages.get(path) != present.get(path))


def write(pages: dict[str, str], docs: Path = DOCS) -> list[str]:
    """Bring ``docs/reference/`` to ``pages``: write what differs, remove what is no longer generated."""
    changed = stale(pages, docs)
    for path in changed:
        target = docs / path
        if path in pages:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(pages[path])
        else:
            target.unlink()
    return changed
