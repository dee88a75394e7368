"""``registry import mlflow``: copy registered models from a running MLflow tracking server."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from registry_cli.mlflow_import.apply import DEFAULT_CONCURRENCY, ModelOutcome, apply_plan
from registry_cli.mlflow_import.mapping import MappingOptions, build_plan
from registry_cli.mlflow_import.plan import ImportPlan
from registry_cli.mlflow_import.source import (
    DEFAULT_MAX_ANSWER_BYTES,
    MlflowSource,
    MlflowSourceError,
    SourceLimits,
)
from registry_cli.terminal import markup, visible
from registry_client import RegistryClient
from registry_client.errors import RegistryError
from registry_contract import catalog

import_app = typer.Typer(help="Import models from another registry.", no_args_is_help=True)
console = Console(stderr=True)


def like_filter(glob: str) -> str:
    """An MLflow search filter for model names matching a shell glob (``*``, ``?``)."""
    pattern = glob.replace("'", "").replace("%", "").replace("_", "\\_").replace("*", "%").replace("?", "_")
    return f"name LIKE '{pattern}'"


@import_app.command("mlflow")
def import_mlflow(
    tracking_uri: Annotated[str, typer.Option(help="The MLflow tracking server, e.g. http://127.0.0.1:5000")],
    team: Annotated[str, typer.Option(help="The team that will own the imported models")],
    models: Annotated[str | None, typer.Option(help="Only MLflow models whose name matches this glob")] = None,
    dry_run: Annotated[bool, typer.Option(help="Read and plan, send nothing")] = False,
    default_framework: Annotated[str, typer.Option(help="For versions whose flavor names no framework")] = "custom",
    artifact_scheme: Annotated[
        list[str] | None, typer.Option(help="Artifact URI schemes to accept (repeat; default: s3)")
    ] = None,
    api_key: Annotated[str | None, typer.Option(envvar="REGISTRY_API_KEY", help="A key of the team")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Models imported at once")] = DEFAULT_CONCURRENCY,
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
    """Copy registered models, versions, stages, aliases and lineage from MLflow; re-running sends nothing twice."""
    started = time.perf_counter()
    try:
        schemes = tuple(artifact_scheme or catalog.DEFAULT_ARTIFACT_SCHEMES)
        options = MappingOptions(team=team, default_framework=default_framework, artifact_schemes=schemes)
        with MlflowSource(tracking_uri, limits=SourceLimits(max_answer_bytes=max_answer_bytes)) as source:
            snapshot = source.read(filter_string=like_filter(models) if models else None)
    except (ValueError, MlflowSourceError) as exc:
        console.print(f"[red]cannot read MLflow:[/red] {markup(str(exc), lines=False)}")
        raise typer.Exit(1) from None
    plan = build_plan(snapshot, options)
    if dry_run:
        _report(plan, None, time.perf_counter() - started, as_json=as_json)
        return
    try:
        with RegistryClient(api_key) as client, Progress(console=console, transient=True) as progress:
            task = progress.add_task("importing", total=plan.step_count())
            outcomes = apply_plan(plan, client, advance=lambda n: progress.advance(task, n), concurrency=concurrency)
    except RegistryError as exc:
        refusal = markup(f"{exc.detail} (correlation id {exc.correlation_id})", lines=False)
        console.print(f"[red]the registry refused:[/red] {refusal}")
        raise typer.Exit(4) from None
    _report(plan, outcomes, time.perf_counter() - started, as_json=as_json)
    if any(o.failed for o in outcomes):
        raise typer.Exit(1)


def _report(plan: ImportPlan, outcomes: list[ModelOutcome] | None, seconds: float, *, as_json: bool) -> None:
    versions = sum(len(m.versions) for m in plan.models)
    if as_json:
        summary = {
            "models": len(plan.models),
            "versions": versions,
            "seconds": round(seconds, 3),
            "outcomes": [o.__dict__ for o in outcomes or []],
            "skipped": [f.__dict__ for f in plan.skipped],
            "adjusted": [f.__dict__ for f in plan.adjusted],
        }
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=markup(f"MLflow import into team {plan.team}") + (" (dry run)" if outcomes is None else ""))
    for column in ("MLflow model", "registry model", "versions", "sent", "already present", "skipped", "failed"):
        table.add_column(column)
    by_name = {o.mlflow_name: o for o in outcomes or []}
    for model in plan.models:
        done = by_name.get(model.mlflow_name)
        table.add_row(
            markup(model.mlflow_name, lines=False),
            markup(model.name, lines=False),
            str(len(model.versions)),
            str(done.sent) if done else "-",
            str(done.present) if done else "-",
            str(len(plan.skipped_of(model.mlflow_name))),
            markup("\n".join(done.failed)) if done and done.failed else "0",
        )
    typer.echo("")
    Console().print(table)
    for finding in plan.skipped:
        typer.echo(visible(f"skipped: {finding.mlflow_name} {finding.item}: {finding.reason}", lines=False))
    rate = versions / seconds if seconds else 0.0
    typer.echo(f"{len(plan.models)} models, {versions} versions in {seconds:.1f} s ({rate:.1f} versions/s)")
