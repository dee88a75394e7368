"""``registry backup`` / ``registry restore``: the CLI face of :mod:`registry_cli.backup`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from registry_cli.backup import BackupError, backup, restore
from registry_cli.config import StackSettings

console = Console(stderr=True, soft_wrap=True)
DataDir = Annotated[Path | None, typer.Option(help="The stack's data directory (default .data)")]


def _settings(data_dir: Path | None) -> StackSettings:
    return StackSettings(data_dir=data_dir) if data_dir is not None else StackSettings()


def backup_command(
    into: Annotated[
        Path | None, typer.Argument(help="A new directory for the archives (default <data dir>/backups/<UTC time>)")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Archive the running stack's databases (consistent, with their oplogs) into a new directory."""
    settings = _settings(data_dir)
    target = into or settings.data_dir / "backups" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        manifest = asyncio.run(backup(settings, target))
    except BackupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    sizes = ", ".join(f"{name} {_size(archive['bytes'])}" for name, archive in manifest["archives"].items())
    console.print(f"backed up to {target} ({sizes}); keep .data/secrets.json safe separately: it is not in it")


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-27T14:05:00Z)") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no time zone: add Z or an offset")
    return moment


def restore_command(
    source: Annotated[Path, typer.Argument(help="A directory made by `registry backup`")],
    to_time: Annotated[
        str | None, typer.Option("--to-time", help="Replay up to this time (ISO 8601 with zone) instead of all")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Replace the stopped stack's databases with a backup, whole or as they were at --to-time."""
    settings = _settings(data_dir)
    try:
        report = restore(settings, source, to_time=_parse_time(to_time) if to_time else None)
    except BackupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    kept = [value for key, value in report.items() if key.endswith("_kept_at")]
    console.print(
        f"restored {source}"
        + (f" to {report['to_time']}" if report["to_time"] else "")
        + (f"; the data it replaced is kept at {', '.join(kept)}" if kept else "")
        + "; start the stack with `make run`"
    )
