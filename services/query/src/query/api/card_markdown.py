"""A model card as markdown: every section, with user text made inert (no markdown or HTML from it)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from registry_contract.times import utc_text
from registry_contract.views import (
    CardEnvironment,
    ModelCard,
)

# Every recorded string is the team's text: it is escaped (inline) or fenced (documentation,
# signature), so no markdown or HTML of theirs takes effect when the card is rendered.
NOT_RECORDED = "Not recorded."
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ESCAPED = frozenset("\\`*_[]|~#")
_BLOCK_START = frozenset("+-=")
_INLINE = str.maketrans({char: "\\" + char for char in _ESCAPED} | _ENTITIES)


def card_markdown(card: ModelCard) -> str:
    """The card as markdown: a heading per section, tables for records, user text escaped or fenced."""
    d = card.details
    title = f"{d.team}/{d.name}" + (f" {card.version}" if card.version else "")
    parts = [
        f"# Model card: {inline(title)}",
        "Generated from the registry's records only; a section without data says it is not recorded.",
        "## Model details",
        _details(card),
        "## Intended use",
        _intended_use(card),
        "## Metrics",
        _metrics_md(card),
        "## Training data and lineage",
        _training_md(card),
        "## Deployment status",
        _deployments_md(card),
        "## Lifecycle",
        _lifecycle_md(card),
        "## Approval and aliases",
        _approval_md(card),
        "## Tags",
        _table(["Tag", "Value"], [[inline(k), inline(v)] for k, v in sorted(card.tags.items())]) or NOT_RECORDED,
        "## Caveats",
        "\n".join(f"- {inline(c)}" for c in card.caveats) or "None derived from the records.",
    ]
    return "\n\n".join(parts) + "\n"


def _details(card: ModelCard) -> str:
    d = card.details
    framework = " ".join(x for x in (d.framework, d.framework_version) if x)
    listed = ", ".join(d.versions)
    if d.versions_truncated:
        listed = f"{listed} (the {len(d.versions)} newest of {d.version_count})"
    rows = [
        ("Team", d.team),
        ("Name", d.name),
        ("Model id", d.model_id),
        ("Owners", ", ".join(d.owners)),
        ("Framework", framework),
        ("Framework version", d.framework_version),
        ("Artifact", d.artifact_uri),
        ("Artifact digest", d.artifact_digest),
        ("Version registered", _when(d.version_created_at) + (f" by key {d.registered_by}" if d.registered_by else "")),
        ("Version updated", _when(d.version_updated_at)),
        ("Model created", _when(d.model_created_at)),
        ("Model updated", _when(d.model_updated_at)),
        ("Latest version", d.latest_version),
        ("Versions", f"{d.version_count}: {listed}" if listed else ""),
    ]
    if d.signed_by:  # only where a signature was verified: most versions carry none
        rows.insert(8, ("Signed by", d.signed_by))
    return _table(["Field", "Value"], [[name, inline(value) if value else NOT_RECORDED] for name, value in rows])


def _intended_use(card: ModelCard) -> str:
    use = card.intended_use
    parts = [paragraphs(use.description) if use.description else f"Description: {NOT_RECORDED}"]
    if use.model_description:
        parts.append("Model description:\n\n" + paragraphs(use.model_description))
    targets = ", ".join(use.deployment_targets)
    parts.append(f"Deployment targets: {inline(targets)}" if targets else f"Deployment targets: {NOT_RECORDED}")
    parts.append("### Documentation")
    parts.append(fenced(use.documentation, "markdown") if use.documentation else NOT_RECORDED)
    parts.append("### Links")
    parts.append("\n".join(f"- {inline(k)}: {inline(v)}" for k, v in sorted(use.links.items())) or NOT_RECORDED)
    parts.append("### Inputs and outputs (signature)")
    parts.append(fenced(_json(use.signature), "json") if use.signature else NOT_RECORDED)
    return "\n\n".join(parts)


def _metrics_md(card: ModelCard) -> str:
    rows = [
        [inline(m.version), inline(name), _number(value), _change(m.changes.get(name), m.previous)]
        for m in card.metrics
        for name, value in sorted(m.metrics.items())
    ]
    if not rows:
        return NOT_RECORDED
    note = "Newest version first; the change is from the previous version by SemVer precedence."
    if card.details.versions_truncated:
        note += f" Only the {len(card.metrics)} newest of {card.details.version_count} versions were read."
    return note + "\n\n" + _table(["Version", "Metric", "Value", "Change"], rows)


def _training_md(card: ModelCard) -> str:
    params = sorted(card.training.parameters.items())
    parts = [
        "### Parameters",
        _table(["Parameter", "Value"], [[inline(k), inline(v)] for k, v in params]) or NOT_RECORDED,
    ]
    parts.append("### Lineage")
    lineage = card.training.lineage
    if lineage is None:
        parts.append(NOT_RECORDED)
        return "\n\n".join(parts)
    fields = [
        ("Training run", lineage.run_id),
        ("Run URL", lineage.run_url),
        ("Experiment", lineage.experiment),
        ("Code repository", lineage.code_repository),
        ("Code commit", lineage.code_commit),
        ("Derived from", lineage.parent),
    ]
    rows = [[name, inline(value) if value else NOT_RECORDED] for name, value in fields]
    parts.append(_table(["Field", "Value"], rows))
    datasets = [[inline(x.name or ""), inline(x.uri or ""), inline(x.digest or "")] for x in lineage.datasets]
    parts.append("Datasets:\n\n" + (_table(["Name", "URI", "Digest"], datasets) or NOT_RECORDED))
    return "\n\n".join(parts)


def _deployments_md(card: ModelCard) -> str:
    deploys = card.deployments
    parts = [f"Overall status of {inline(card.version or '')}: {inline(deploys.status)}."]
    header = ["Environment", "Version", "Status", "Last change", "Previous", "Target", "Pipeline"]
    rows = [_environment_row(e) for e in deploys.environments]
    parts.append(_table(header, rows) or f"Environments: {NOT_RECORDED}")
    if deploys.reports_read:
        parts.append(f"{deploys.failed_reports} failures among the last {deploys.reports_read} reports.")
    if deploys.other_versions:
        parts.append("Other versions deployed or deploying:")
        parts.append(_table(header, [_environment_row(e) for e in deploys.other_versions]))
    return "\n\n".join(parts)


def _environment_row(env: CardEnvironment) -> list[str]:
    values = [env.environment, env.version, env.status, _when(env.changed_at)]
    values += [env.previous_status or "", env.target or "", env.pipeline or ""]
    return [inline(value) for value in values]


def _lifecycle_md(card: ModelCard) -> str:
    by_state = card.lifecycle.versions_by_state
    lines = [f"- {inline(state)}: {inline(', '.join(versions))}" for state, versions in sorted(by_state.items())]
    return f"This version: {inline(card.lifecycle.state)}.\n\nVersions read, by state:\n\n" + "\n".join(lines)


def _approval_md(card: ModelCard) -> str:
    approval = card.approval
    decided = inline(approval.status) + (f" by key {inline(approval.by)}" if approval.by else "")
    decided += f" at {_when(approval.at)}" if approval.at else ""
    parts = [f"This version: {decided}."]
    if approval.comment:
        parts.append("Comment:\n\n" + paragraphs(approval.comment))
    aliases = [[inline(alias), inline(version)] for alias, version in card.aliases.items()]
    parts.append(_table(["Alias", "Version"], aliases) if aliases else "Aliases: none set.")
    rows = [[inline(m.version), inline(m.approval), inline(", ".join(m.aliases))] for m in card.metrics]
    if rows:
        parts.append("Versions read:\n\n" + _table(["Version", "Approval", "Aliases"], rows))
    return "\n\n".join(parts)


def inline(text: str) -> str:
    """``text`` on one line with markdown and HTML inert (safe in a table cell too)."""
    return " ".join(text.split()).translate(_INLINE)


def paragraphs(text: str) -> str:
    """Multi-line ``text`` with its line breaks kept and no line able to start a block construct."""
    lines = []
    for raw in text.splitlines():
        line = inline(raw)
        if line[:1] in _BLOCK_START:
            line = "\\" + line
        digits = len(line) - len(line.lstrip("0123456789"))
        if digits and line[digits : digits + 1] in (".", ")"):
            line = line[:digits] + "\\" + line[digits:]  # "1." would start an ordered list
        lines.append(line)
    return "\n".join(lines)


def fenced(text: str, info: str) -> str:
    """``text`` verbatim in a code fence longer than any backtick run inside it."""
    longest, run = 0, 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _when(moment: datetime | None) -> str:
    return utc_text(moment) if moment else ""


def _number(value: float) -> str:
    return repr(value)


def _change(delta: float | None, previous: str | None) -> str:
    if delta is None:
        return "—" if previous else "first version read"
    return ("+" if delta > 0 else "") + repr(delta)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
