"""Sending an import plan to the registry through the Python client: only what is not there yet.

What is already present is read first (the model, its versions and aliases), so a second run
sends nothing and says so; each step that is sent carries its plan's idempotency key, so a retry
after a lost answer replays instead of registering twice. A refusal fails that step only.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from registry_cli.mlflow_import.plan import ImportPlan, ModelPlan, Step
from registry_client import RegistryClient
from registry_client.errors import NotFound, RegistryError

MAX_VERSIONS_READ = 10_000  # versions of one model read to know which are present
DEFAULT_CONCURRENCY = 8  # models imported at once (httpx.Client is safe to share between threads)


@dataclass
class ModelOutcome:
    """What happened to one MLflow model."""

    mlflow_name: str
    name: str
    sent: int = 0  # steps that changed the registry
    present: int = 0  # steps found already done
    skipped: int = 0  # items the plan left out (with reasons in the plan)
    failed: list[str] = field(default_factory=list)  # "<step>: <why>"


@dataclass(frozen=True)
class Present:
    """What the registry already holds of one model."""

    exists: bool
    versions: dict[str, str]  # version -> lifecycle
    aliases: dict[str, str]
    metadata: dict[str, Any]


def present(client: RegistryClient, team: str, name: str) -> Present:
    """The model's versions, aliases and own metadata as the registry has them (nothing if it is new)."""
    try:
        model = client.get_model(team, name)
    except NotFound:
        return Present(False, {}, {}, {})
    versions = {}
    for version in client.versions(team, name, include_prerelease=True, page_size=200):
        versions[version.version] = version.lifecycle
        if len(versions) >= MAX_VERSIONS_READ:
            break
    metadata = {"description": model.description, "tags": dict(model.tags), "links": dict(model.links)}
    return Present(True, versions, dict(model.aliases), metadata)


def apply_plan(
    plan: ImportPlan,
    client: RegistryClient,
    *,
    advance: Callable[[int], None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ModelOutcome]:
    """Send every step of ``plan`` that is not already done; one outcome per model, in plan order.

    Models are independent, so several are imported at once (each one's steps stay in order):
    a step is one synchronous HTTP command, and one at a time left the registry mostly waiting.
    """
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="import") as pool:
        return list(pool.map(lambda model: _apply_model(plan, model, client, advance), plan.models))


def _apply_model(
    plan: ImportPlan, model: ModelPlan, client: RegistryClient, advance: Callable[[int], None] | None
) -> ModelOutcome:
    outcome = ModelOutcome(model.mlflow_name, model.name, skipped=len(plan.skipped_of(model.mlflow_name)))
    have = present(client, model.team, model.name)
    for step in model.steps():
        if is_done(step, have):
            outcome.present += 1
        else:
            _send(client, step, outcome)
        if advance is not None:
            advance(1)
    return outcome


def is_done(step: Step, have: Present) -> bool:
    """Whether the registry already holds what ``step`` would set."""
    data = step.data
    if step.kind == "register_version":
        return data["version"] in have.versions
    if step.kind == "set_alias":
        return bool(have.aliases.get(data["alias"]) == data["version"])
    if step.kind == "set_lifecycle":
        return bool(have.versions.get(data["version"]) == data["state"])
    wanted = {k: v for k, v in data.items() if k not in ("team", "name") and v is not None}
    return have.exists and all(have.metadata.get(k) == v for k, v in wanted.items())


def _send(client: RegistryClient, step: Step, outcome: ModelOutcome) -> None:
    send: Callable[..., Any] = getattr(client, step.kind)
    keyed = {} if step.kind == "set_alias" else {"idempotency_key": step.idempotency_key}
    try:
        send(**step.data, **keyed)
    except RegistryError as error:
        what = step.data.get("version") or step.data.get("alias") or "metadata"
        outcome.failed.append(f"{step.kind} {what}: {error.detail}")
    else:
        outcome.sent += 1
