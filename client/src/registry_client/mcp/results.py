"""What the MCP tools answer: output models (their ``outputSchema``) and the readable text beside them.

The structured content is the read API's JSON as it came, validated against these models; the text
is a short summary an assistant can quote, with the next step (a cursor, a narrower tool) spelled out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from registry_contract.compare_views import VersionComparison
from registry_contract.views import EnvironmentStatus, ModelPublic, ModelVersionPublic, Page


class Snippet(BaseModel):
    """Why a search hit matched, in one field."""

    fragment: str = Field(description="the matching text, trimmed")
    html: str = Field("", description="the fragment with <b> around the matched terms")
    highlights: list[Any] = Field([], description="where the matched terms are in the fragment")


class SearchHit(BaseModel):
    """One ranked search result."""

    score: float = Field(description="BM25 relevance over the models you may read; only comparable within one answer")
    model: ModelPublic
    latest_version: ModelVersionPublic | None = None
    snippets: dict[str, Snippet] = Field({}, description="per matched field")


class SearchResults(BaseModel):
    """Ranked models matching a query, with facet counts over everything the caller may read that matched."""

    items: list[SearchHit]
    facets: dict[str, Any] = Field({}, description="counts per framework, status, team, target, environment")
    next_cursor: str | None = Field(None, description="pass back as cursor for the next page")


class ModelCardResult(BaseModel):
    """A model card as structured sections and as markdown."""

    card: dict[str, Any] = Field(description="details, intended use, metrics, training, deployments, lifecycle, …")
    markdown: str


class DeploymentStatus(BaseModel):
    """Where one version of a model is deployed."""

    team: str
    name: str
    version: str
    status: str = Field(description="the most advanced status across environments")
    lifecycle: str = "active"
    environments: dict[str, EnvironmentStatus] = Field({}, description="the latest accepted report per environment")


VersionPage = Page[ModelVersionPublic]


def _listed(values: dict[str, Any] | list[str]) -> str:
    if isinstance(values, dict):
        return ", ".join(f"{key}={value}" for key, value in values.items())
    return ", ".join(values)


def model_text(model: ModelPublic) -> str:
    """A model's headline fields, one per line."""
    latest = f"latest version {model.latest_version}" if model.latest_version else "no stable version yet"
    count = f"{model.version_count} version{'s' * (model.version_count != 1)}"
    lines = [f"{model.team}/{model.name}: {latest} ({count}), framework {model.framework}"]
    if model.description:
        lines.append(f"Description: {model.description}")
    if model.deployment_targets:
        lines.append(f"Deployment targets: {_listed(model.deployment_targets)}")
    if model.tags:
        lines.append(f"Tags: {_listed(model.tags)}")
    if model.created_at and model.updated_at:
        lines.append(f"Created {model.created_at:%Y-%m-%d %H:%M}Z, updated {model.updated_at:%Y-%m-%d %H:%M}Z")
    return "\n".join(lines)


def _environments(environments: dict[str, EnvironmentStatus]) -> str:
    return ", ".join(f"{env}: {where.status}" for env, where in sorted(environments.items())) or "no reports"


def versions_text(team: str, name: str, page: VersionPage) -> str:
    """A page of versions, newest first, with status, metrics and the cursor for more."""
    if not page.items:
        return f"{team}/{name} has no versions on this page."
    lines = [f"Versions of {team}/{name}, newest first:"]
    for v in page.items:
        flags = [
            flag for flag, shown in ((v.lifecycle, v.lifecycle != "active"), ("prerelease", v.prerelease)) if shown
        ]
        line = f"- {v.version}{f' ({_listed(flags)})' if flags else ''}: {v.status} [{_environments(v.environments)}]"
        line += f", {v.framework}, created {v.created_at:%Y-%m-%d}"
        if v.metrics:
            line += f", metrics {_listed({k: round(m, 4) for k, m in v.metrics.items()})}"
        lines.append(line)
    if page.next_cursor:
        lines.append(f'More versions: call list_versions again with cursor="{page.next_cursor}".')
    return "\n".join(lines)


def deployment_text(status: DeploymentStatus) -> str:
    """A version's overall status and one line per environment."""
    lines = [f"{status.team}/{status.name} {status.version}: {status.status} overall (lifecycle {status.lifecycle})"]
    for env, where in sorted(status.environments.items()):
        target = f" on {where.target}" if where.target else ""
        lines.append(f"- {env}: {where.status}{target} since {where.occurred_at:%Y-%m-%d %H:%M}Z")
    if not status.environments:
        lines.append("No deployment has been reported for this version.")
    return "\n".join(lines)


def search_text(query: str, results: SearchResults) -> str:
    """The ranked hits with why each matched, the facets, and the cursor for more."""
    if not results.items:
        return f'No model you can read matches "{query}".'
    lines = [f'Models matching "{query}", best first:']
    for rank, hit in enumerate(results.items, start=1):
        model = hit.model
        version = hit.latest_version
        named = "".join(f" @{alias}" for alias in version.aliases) if version else ""
        state = f", latest {version.version}{named} {version.status}" if version else ""
        lines.append(f"{rank}. {model.team}/{model.name} ({model.framework}{state}), score {hit.score:.2f}")
        for field, snippet in hit.snippets.items():
            lines.append(f"   {field}: {snippet.fragment}")
    for facet, counts in results.facets.items():
        if isinstance(counts, dict) and counts:
            lines.append(f"{facet}: {_listed(counts)}")
    if results.next_cursor:
        lines.append(f'More results: call search_models again with cursor="{results.next_cursor}".')
    return "\n".join(lines)


def comparison_text(found: VersionComparison) -> str:
    """Each version's state, then per later version its metric deltas and what else changed from the base."""
    lines = [f"{found.team}/{found.name}: {', '.join(v.version for v in found.versions)} compared with {found.base}"]
    for v in found.versions:
        lines.append(
            f"- {v.version}: {v.lifecycle}, approval {v.approval.status}, {v.status} [{_environments(v.environments)}]"
        )
    for diff in found.differences:
        deltas = [
            f"{m.name} {m.base:.4g} -> {m.value:.4g} ({m.delta:+.4g})"
            for m in diff.metrics
            if m.base is not None and m.value is not None and m.delta is not None
        ]
        lines.append(f"{diff.version} against {found.base}: " + ("; ".join(deltas) or "no metric in common"))
        if diff.metrics_only_in_base or diff.metrics_only_in_version:
            lines.append(
                f"  metrics only in {found.base}: {_listed(diff.metrics_only_in_base) or 'none'}; "
                f"only in {diff.version}: {_listed(diff.metrics_only_in_version) or 'none'}"
            )
        others = [name for name in diff.changed if name != "metrics"]
        lines.append(f"  also changed: {_listed(others)}" if others else "  nothing else changed")
    return "\n".join(lines)
