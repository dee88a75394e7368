"""``registry compare``: versions of a model side by side, with metric deltas and what changed from the base."""

from __future__ import annotations

from typing import Annotated

import typer

from registry_client.cli.output import ApiKey, AsJson, Consistency, print_json, registry, table
from registry_contract.compare_views import (
    MAX_COMPARED_VERSIONS,
    ComparedVersion,
    MappingDifferences,
    MetricDelta,
    VersionComparison,
    VersionDifferences,
)

Versions = Annotated[
    list[str],
    typer.Argument(help=f"2 to {MAX_COMPARED_VERSIONS} versions, the base first: SemVer, 'latest' or '@alias'"),
]


def compare(
    team: str,
    name: str,
    versions: Versions,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """Compare versions side by side: state, metrics with their change from the first, and what else differs."""
    if not 2 <= len(versions) <= MAX_COMPARED_VERSIONS:
        raise typer.BadParameter(f"name 2 to {MAX_COMPARED_VERSIONS} versions", param_hint="VERSIONS")
    with registry(api_key, consistency) as client:
        found = client.compare_versions(team, name, versions)
    if as_json:
        print_json(found)
        return
    print_comparison(found)


def print_comparison(found: VersionComparison) -> None:
    """The three tables: the versions side by side, the metrics with deltas, the differences from the base."""
    columns = ["", *(v.version for v in found.versions)]
    table(f"{found.team}/{found.name}: {found.base} and {len(found.versions) - 1} more", columns, _state_rows(found))
    others = {d.version: d for d in found.differences}
    names = sorted({name for v in found.versions for name in v.metrics})
    rows = []
    for name in names:
        cells: list[object] = [name, found.versions[0].metrics.get(name)]
        for version in found.versions[1:]:
            delta = next((m for m in others[version.version].metrics if m.name == name), None)
            cells.append(metric_cell(delta) if delta else None)
        rows.append(cells)
    table(f"metrics (change from {found.base})", ["metric", *columns[1:]], rows)
    changes = [(d.version, field, text) for d in found.differences for field, text in difference_lines(d)]
    table(f"differences from {found.base}", ["version", "field", "change"], changes)


def _state_rows(found: VersionComparison) -> list[list[object]]:
    versions = found.versions

    def row(label: str, values: list[object]) -> list[object]:
        return [label, *values]

    rows = [
        row("created", [v.created_at for v in versions]),
        row("lifecycle", [v.lifecycle for v in versions]),
        row("approval", [v.approval.status for v in versions]),
        row("aliases", [[f"@{a}" for a in v.aliases] for v in versions]),
        row("status", [v.status for v in versions]),
    ]
    for env in found.environments:
        rows.append(row(f"  {env}", [_where(v, env) for v in versions]))
    rows += [
        row("provenance", [_provenance(v) for v in versions]),
        row("parent", [_parent(v) for v in versions]),
        row("code commit", [v.lineage.code_commit for v in versions]),
        row("datasets", [[d.name or d.uri for d in v.lineage.datasets] for v in versions]),
        row("run", [v.lineage.run_id for v in versions]),
    ]
    return rows


def metric_cell(delta: MetricDelta) -> str | None:
    """``0.93 (+0.02, +2.2%)``, the value alone when the base lacks the metric, None when this version does."""
    if delta.value is None:
        return None
    if delta.delta is None:
        return f"{delta.value:.4g} (new)"
    relative = f", {delta.relative:+.1%}" if delta.relative is not None else ""
    return f"{delta.value:.4g} ({delta.delta:+.4g}{relative})"


def difference_lines(found: VersionDifferences) -> list[tuple[str, str]]:
    """What one version changed against the base, one line per field that differs."""
    lines: list[tuple[str, str]] = []
    if found.metrics_only_in_base:
        lines.append(("metrics", "missing: " + ", ".join(found.metrics_only_in_base)))
    if found.metrics_only_in_version:
        lines.append(("metrics", "new: " + ", ".join(found.metrics_only_in_version)))
    lines += [("tags", text) for text in _mapping_lines(found.tags)]
    lines += [("parameters", text) for text in _mapping_lines(found.parameters)]
    lines += [("datasets", f"+ {d.name or d.uri} {d.digest or ''}".rstrip()) for d in found.datasets_added]
    lines += [("datasets", f"- {d.name or d.uri} {d.digest or ''}".rstrip()) for d in found.datasets_removed]
    for field in ("code_commit", "code_repository", "parent", "approval", "lifecycle"):
        change = getattr(found, field)
        if change is not None:
            lines.append((field.replace("_", " "), f"{change.base or '-'} → {change.value or '-'}"))
    return lines


def _mapping_lines(found: MappingDifferences) -> list[str]:
    lines = [f"+ {k}={v}" for k, v in found.added.items()]
    lines += [f"- {k}={v}" for k, v in found.removed.items()]
    return lines + [f"~ {k}: {c.base} → {c.value}" for k, c in found.changed.items()]


def _where(version: ComparedVersion, env: str) -> str | None:
    state = version.environments.get(env)
    return f"{state.status} since {state.occurred_at:%Y-%m-%d %H:%M}" if state else None


def _provenance(version: ComparedVersion) -> str | None:
    found = version.provenance
    if found is None:
        return None
    return f"verified ({found.signer})" if found.verified else "not verified"


def _parent(version: ComparedVersion) -> str | None:
    parent = version.lineage.parent
    return f"{parent.team}/{parent.name}@{parent.version}" if parent else None
