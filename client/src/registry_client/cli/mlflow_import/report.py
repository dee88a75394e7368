"""What ``registry import mlflow`` prints: the plan or the outcome, per model, as lines or as JSON.

Lines are never cut (no table to fit a terminal's width), and every name and value that came
from MLflow or the registry passes :func:`registry_client.cli.terminal.visible` first. A dry run
shows every step that would be sent or kept; an import shows what was pinned, kept, failed or skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry_client.cli.mlflow_import.apply import ModelOutcome
from registry_client.cli.mlflow_import.plan import ImportPlan
from registry_client.cli.terminal import visible

KEPT_HINT = "--update-existing changes them"


def summary(
    plan: ImportPlan,
    outcomes: Sequence[ModelOutcome],
    seconds: float,
    *,
    dry_run: bool,
    matched: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The report as JSON-ready data: per model its outcome and every step's action."""
    return {
        "dry_run": dry_run,
        "team": plan.team,
        "models": len(plan.models),
        "versions": sum(len(m.versions) for m in plan.models),
        "seconds": round(seconds, 3),
        **({"matched": dict(matched)} if matched is not None else {}),
        "outcomes": [_outcome(o) for o in outcomes],
        "skipped": [f.__dict__ for f in plan.skipped],
        "adjusted": [f.__dict__ for f in plan.adjusted],
        "notes": list(plan.read_notes),
    }


def _outcome(outcome: ModelOutcome) -> dict[str, Any]:
    return {
        "mlflow_name": outcome.mlflow_name,
        "name": outcome.name,
        "exists": outcome.exists,
        "to_send": outcome.to_send,
        "sent": outcome.sent,
        "present": outcome.present,
        "kept": outcome.kept,
        "skipped": outcome.skipped,
        "failed": outcome.failed,
        "actions": [
            {
                "action": c.action,
                "command": c.step.kind,
                **c.target,
                "item": c.item,
                **({"detail": c.detail} if c.detail else {}),
            }
            for c in outcome.changes
        ],
    }


def matched_lines(matched: Mapping[str, list[str]]) -> list[str]:
    """One line per ``--models`` pattern: the MLflow models it matched."""
    return [
        visible(f"--models {pattern!r} matched {len(names)}: {', '.join(names)}", lines=False)
        for pattern, names in matched.items()
        if names
    ]


def text_lines(
    plan: ImportPlan,
    outcomes: Sequence[ModelOutcome],
    seconds: float,
    *,
    dry_run: bool,
    update_existing: bool = False,
) -> list[str]:
    """The report as lines: a heading, per model its state and steps, then the totals."""
    heading = f"MLflow import from {plan.tracking_uri} into team {plan.team}"
    lines = [heading + (": the plan (dry run, nothing sent)" if dry_run else "")]
    by_name = {o.mlflow_name: o for o in outcomes}
    for model in plan.models:
        outcome = by_name.get(model.mlflow_name) or ModelOutcome(model.mlflow_name, model.name)
        lines += _model_lines(plan, model.team, outcome, dry_run=dry_run, update_existing=update_existing)
    planned = {m.mlflow_name for m in plan.models}
    lines += [f"skipped: {f.mlflow_name} {f.item}: {f.reason}" for f in plan.skipped if f.mlflow_name not in planned]
    lines += [f"note: {note}" for note in plan.read_notes]
    lines.append(_totals(plan, outcomes, seconds, dry_run=dry_run))
    kept = sum(o.kept for o in outcomes)
    if kept and not update_existing:
        lines.append(
            f"{kept} kept: existing models keep their own aliases, metadata and version lifecycles where MLflow's "
            f"differ; {KEPT_HINT}"
        )
    return [visible(line, lines=False) for line in lines]


def _model_lines(
    plan: ImportPlan, team: str, outcome: ModelOutcome, *, dry_run: bool, update_existing: bool
) -> list[str]:
    if not outcome.exists:
        state = "new model"
    elif update_existing:
        state = "exists: updated to MLflow's (--update-existing)"
    else:
        state = "exists: only new versions are added, the rest is kept"
    counts = [f"{outcome.to_send} to send" if dry_run else f"{outcome.sent} sent"]
    counts += [f"{n} {what}" for n, what in ((outcome.present, "present"), (outcome.kept, "kept")) if n]
    counts += [f"{len(outcome.failed)} failed"] if outcome.failed else []
    counts += [f"{outcome.skipped} skipped"] if outcome.skipped else []
    lines = [f"{outcome.mlflow_name} → {team}/{outcome.name} ({state}): {', '.join(counts)}"]
    for change in outcome.changes:
        if change.action in ("kept", "pin") or (dry_run and change.sends):
            lines.append(f"  {change.action:<8} {change.item}" + (f": {change.detail}" if change.detail else ""))
    lines += [f"  {'failed':<8} {failure}" for failure in outcome.failed]
    lines += [f"  {'skipped':<8} {f.item}: {f.reason}" for f in plan.skipped_of(outcome.mlflow_name)]
    return lines


def _totals(plan: ImportPlan, outcomes: Sequence[ModelOutcome], seconds: float, *, dry_run: bool) -> str:
    versions = sum(len(m.versions) for m in plan.models)
    steps = sum(o.to_send for o in outcomes) if dry_run else sum(o.sent for o in outcomes)
    counts = [f"{steps} steps {'to send' if dry_run else 'sent'}", f"{sum(o.present for o in outcomes)} present"]
    counts.append(f"{sum(o.kept for o in outcomes)} kept")
    counts += [f"{failed} failed"] if (failed := sum(len(o.failed) for o in outcomes)) else []
    counts += [f"{len(plan.skipped)} skipped"] if plan.skipped else []
    rate = versions / seconds if seconds else 0.0
    return (
        f"{len(plan.models)} models, {versions} versions: {', '.join(counts)} "
        f"in {seconds:.1f} s ({rate:.1f} versions/s)"
    )
