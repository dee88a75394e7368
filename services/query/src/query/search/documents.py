"""What the search index holds for one model: its text and its filterable values, from stored documents.

One search document per model, built from the model document and all its versions, so a query
matches a model by anything any of its versions says (a metric name of an old version, the status
of a version deployed to production). Filters mirror ``GET /v1/models``: framework, deployment
targets and tags are the model's headline values; status, environment and lifecycle are those of
any of its versions. The document also carries what a hit shows (the model and its latest version,
as public JSON), so a search answers from the index alone, one consistent snapshot, without a read
of MongoDB per page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from registry_contract.documents import Document
from registry_contract.views import model_public, version_public


@dataclass(frozen=True)
class SearchDocument:
    """One model as the index sees it: text to rank on, exact values to filter and count on."""

    model_id: str
    team: str
    name: str
    description: str
    documentation: str
    tags: str
    facts: str
    framework: str
    deployment_targets: tuple[str, ...]
    tag_pairs: tuple[str, ...]
    tag_keys: tuple[str, ...]
    statuses: tuple[str, ...]
    environments: tuple[str, ...]
    env_statuses: tuple[str, ...]
    lifecycles: tuple[str, ...]
    readers: tuple[str, ...]
    updated: int
    summary: str  # {"model": ModelPublic, "latest_version": ModelVersionPublic | null} as JSON


def search_document(model: Document, versions: list[Document]) -> SearchDocument:
    """The search document of ``model`` and its ``versions`` (stored shapes, any order)."""
    tags = _merged_tags(model, versions)
    env_statuses = {f"{env}={state.get('status')}" for v in versions for env, state in _envs(v)}
    statuses = _unique(v.get("status") or "registered" for v in versions)
    lifecycles = _unique(v.get("lifecycle") or "active" for v in versions)
    return SearchDocument(
        model_id=model["_id"],
        team=model["team"],
        name=model["name"],
        description=_paragraphs([model.get("description"), *(v.get("description") for v in versions)]),
        documentation=model.get("documentation") or "",
        tags="; ".join(f"{key}: {value}" for key, value in tags.items()),
        facts=_facts(model, versions, statuses, lifecycles),
        framework=model.get("framework") or _latest_framework(versions),
        deployment_targets=_unique(model.get("deployment_targets") or []),
        tag_pairs=tuple(f"{key}={value}" for key, value in (model.get("tags") or {}).items()),
        tag_keys=tuple(model.get("tags") or {}),
        statuses=statuses,
        environments=tuple(sorted({env for v in versions for env, _ in _envs(v)})),
        env_statuses=tuple(sorted(env_statuses)),
        lifecycles=lifecycles,
        readers=readers_of(model),
        updated=_micros([model, *versions]),
        summary=hit_summary(model, versions),
    )


def readers_of(model: Document) -> tuple[str, ...]:
    """The teams whose index holds ``model``: its readers (its own team when it names none)."""
    return _unique(model.get("readers") or [model["team"]])


def hit_summary(model: Document, versions: list[Document]) -> str:
    """What a search hit shows of ``model``: its public view and its latest version's, as JSON.

    The latest version is looked for among ``versions`` (the projection reads a model's newest
    ones); a model whose latest stable version is older than all of those shows none.
    """
    latest = next((v for v in versions if v.get("version") == model.get("latest_version")), None)
    shown = {"model": model_public(model), "latest_version": version_public(latest) if latest else None}
    return json.dumps(shown, separators=(",", ":"))


def _merged_tags(model: Document, versions: list[Document]) -> dict[str, str]:
    """Every tag any version had, the model's headline values winning."""
    merged: dict[str, str] = {}
    for doc in [*versions, model]:
        merged.update(doc.get("tags") or {})
    return merged


def _envs(version: Document) -> Iterable[tuple[str, Document]]:
    return (version.get("environments") or {}).items()


def _facts(model: Document, versions: list[Document], statuses: tuple[str, ...], lifecycles: tuple[str, ...]) -> str:
    """Framework, targets, metric names, lifecycles, statuses and alias names as searchable words."""
    frameworks = _unique([model.get("framework") or "", *(v.get("framework") or "" for v in versions)])
    targets = _unique(
        [*(model.get("deployment_targets") or []), *(t for v in versions for t in v.get("deployment_targets") or [])]
    )
    metrics = _unique(name for v in versions for name in v.get("metrics") or {})
    environments = _unique(env for v in versions for env, _ in _envs(v))
    aliases = _unique(model.get("aliases") or {})
    parts = [frameworks, targets, metrics, lifecycles, statuses, environments, aliases]
    return "\n".join(" ".join(part) for part in parts if part)


def _latest_framework(versions: list[Document]) -> str:
    latest = max(versions, key=lambda v: v.get("version_key") or "", default={})
    return str(latest.get("framework") or "")


def _paragraphs(texts: Iterable[str | None]) -> str:
    return "\n\n".join(_unique(text.strip() for text in texts if text and text.strip()))


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    """Non-empty values once each, in first-seen order."""
    return tuple(dict.fromkeys(value for value in values if value))


def _micros(docs: list[Document]) -> int:
    """The latest change of any of ``docs``, in microseconds since the epoch (0 if none is dated)."""
    times = [doc.get("updated_at") or doc.get("created_at") for doc in docs]
    return max((int(t.timestamp() * 1_000_000) for t in times if isinstance(t, datetime)), default=0)
