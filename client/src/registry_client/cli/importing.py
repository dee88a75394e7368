"""``registry import mlflow``: copy registered models from a running MLflow tracking server."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from registry_client.cli.mlflow_import import report
from registry_client.cli.mlflow_import.apply import DEFAULT_CONCURRENCY, ModelOutcome, apply_plan
from registry_client.cli.mlflow_import.mapping import MappingOptions, build_plan
from registry_client.cli.mlflow_import.plan import ImportPlan
from registry_client.cli.mlflow_import.records import MlflowSnapshot
from registry_client.cli.mlflow_import.selection import Selection
from registry_client.cli.mlflow_import.source import (
    DEFAULT_MAX_ANSWER_BYTES,
    MlflowSource,
    MlflowSourceError,
    SourceLimits,
)
from registry_client.cli.output import ExitCode, registry
from registry_client.cli.terminal import markup, visible
from registry_contract import catalog

import_app = typer.Typer(help="Import models from another registry.", no_args_is_help=True)
console = Console(stderr=True)
NAMES_SHOWN = 10  # MLflow names a "matched nothing" error lists


@import_app.command("mlflow")
def import_mlflow(
    tracking_uri: Annotated[str, typer.Option(help="The MLflow tracking server, e.g. http://127.0.0.1:5000")],
    team: Annotated[str, typer.Option(help="The team that will own the imported models")],
    models: Annotated[
        list[str] | None,
        typer.Option(
            help="Only MLflow models matching this shell glob (*, ?, [abc]; repeat for several), compared without"
            " regard to case with the MLflow name and with the registry name it becomes ('card-*' matches"
            " 'Card Fraud XGB'). What each pattern matched is printed; one that matches nothing is a warning,"
            " and exit code 3 if none matches anything"
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Read MLflow and the registry (scope models:read) and print the plan: per model what would be"
            " created, added, changed or kept, and what is skipped; send nothing"
        ),
    ] = False,
    update_existing: Annotated[
        bool,
        typer.Option(
            "--update-existing",
            help="Also change models the registry already holds: point their aliases where MLflow's are, set"
            " their description, merge MLflow's tags and links into theirs (nothing is dropped), archive their"
            " versions MLflow archived. Without it such a model only gains the versions it lacks, and each"
            " difference is reported as kept",
        ),
    ] = False,
    default_framework: Annotated[str, typer.Option(help="For versions whose flavor names no framework")] = "custom",
    artifact_scheme: Annotated[
        list[str] | None, typer.Option(help="Artifact URI schemes to accept (repeat; default: s3)")
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="REGISTRY_API_KEY", help="A key of the team")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan or the outcome as JSON, with every step's action per model")
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Models imported at once")] = DEFAULT_CONCURRENCY,
    max_models: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_MODELS_LISTED,
            help="Read at most this many registered models by name (the first, in MLflow's order); --models"
            " chooses among them",
        ),
    ] = SourceLimits.max_models,
    max_answer_bytes: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="REGISTRY_MLFLOW_MAX_ANSWER_BYTES",
            show_envvar=True,
            help="Refuse any MLflow answer larger than this (read in chunks, never whole)",
        ),
    ] = DEFAULT_MAX_ANSWER_BYTES,
) -> None:
    """Copy registered models, versions, stages, aliases and lineage from MLflow; re-running sends nothing twice.

    A model the registry already holds only gains the versions it lacks: its aliases, description,
    tags, links and the lifecycle of its versions stay as they are, and each difference is reported
    as kept, unless --update-existing. Exit code 0; 1 if MLflow cannot be read or a step failed;
    3 if no model matched --models; 4 if the registry refused the key.
    """
    started = time.perf_counter()
    selection = Selection(tuple(models or ()))
    try:
        schemes = tuple(artifact_scheme or catalog.DEFAULT_ARTIFACT_SCHEMES)
        options = MappingOptions(team=team, default_framework=default_framework, artifact_schemes=schemes)
        limits = SourceLimits(max_models=max_models, max_answer_bytes=max_answer_bytes)
        with MlflowSource(tracking_uri, limits=limits) as source:
            snapshot = source.read(select=selection.chooses)
    except (ValueError, MlflowSourceError) as exc:
        console.print(f"[red]cannot read MLflow:[/red] {markup(str(exc), lines=False)}")
        raise typer.Exit(ExitCode.ERROR) from None
    matched = _matched(selection, snapshot, max_models)
    plan = build_plan(snapshot, options)
    with registry(api_key) as client, Progress(console=console, transient=True) as progress:
        task = progress.add_task("planning" if dry_run else "importing", total=plan.step_count())
        outcomes = apply_plan(
            plan,
            client,
            update_existing=update_existing,
            dry_run=dry_run,
            advance=lambda n: progress.advance(task, n),
            concurrency=concurrency,
        )
    _report(
        plan,
        outcomes,
        time.perf_counter() - started,
        as_json=as_json,
        dry_run=dry_run,
        update_existing=update_existing,
        matched=matched,
    )
    if any(o.failed for o in outcomes):
        raise typer.Exit(ExitCode.ERROR)


MAX_MODELS_LISTED = 100_000  # bounds the names one import lists, even when asked for more


def _matched(selection: Selection, snapshot: MlflowSnapshot, max_models: int) -> dict[str, list[str]] | None:
    """What each ``--models`` pattern matched; a warning for each that matched nothing, an exit if none did."""
    if not selection.patterns:
        return None
    matched = selection.matched(snapshot.listed)
    empty = [pattern for pattern, names in matched.items() if not names]
    if len(empty) == len(matched):
        patterns = ", ".join(f"--models {p!r}" for p in empty)
        shown = ", ".join(repr(name) for name in snapshot.listed[:NAMES_SHOWN])
        more = f" (and {len(snapshot.listed) - NAMES_SHOWN} more)" if len(snapshot.listed) > NAMES_SHOWN else ""
        found = f"its {len(snapshot.listed)} models are {shown}{more}" if snapshot.listed else "it has no model"
        message = f"error: {patterns} matched no model of the MLflow server: {found}"
        if len(snapshot.listed) >= max_models:
            message += f"; only the first {max_models} were listed: raise --max-models to look further"
        typer.echo(visible(message, lines=False), err=True)
        raise typer.Exit(ExitCode.NOT_FOUND)
    for pattern in empty:
        typer.echo(visible(f"warning: --models {pattern!r} matched no MLflow model", lines=False), err=True)
    return matched


def _report(
    plan: ImportPlan,
    outcomes: list[ModelOutcome] | None,
    seconds: float,
    *,
    as_json: bool,
    dry_run: bool | None = None,
    update_existing: bool = False,
    matched: Mapping[str, list[str]] | None = None,
) -> None:
    """Print the plan (a dry run, or ``outcomes`` of ``None``) or the outcome, as lines or as JSON."""
    dry = outcomes is None if dry_run is None else dry_run
    if as_json:
        summary = report.summary(plan, outcomes or [], seconds, dry_run=dry, matched=matched)
        typer.echo(json.dumps(summary, indent=2))  # ASCII only: control characters leave as \uXXXX
        return
    lines = report.matched_lines(matched or {})
    lines += report.text_lines(plan, outcomes or [], seconds, dry_run=dry, update_existing=update_existing)
    typer.echo("\n".join(lines))
