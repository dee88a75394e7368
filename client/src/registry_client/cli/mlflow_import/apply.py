"""Sending an import plan to the registry through the Python client: only what is not there yet.

What is already present is read first (the model, its versions and aliases) and each step is
decided against it (:mod:`.changes`): a second run sends nothing and says so, and a model that
existed before keeps its aliases and metadata unless ``update_existing``. A dry run reads and
decides the same way and sends nothing. Each step that is sent carries its plan's idempotency
key, so a retry after a lost answer replays instead of registering twice. A refusal fails that
step only.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from registry_client import RegistryClient
from registry_client.cli.mlflow_import.changes import ABSENT, Change, Present, decide
from registry_client.cli.mlflow_import.plan import ImportPlan, ModelPlan, Step
from registry_client.errors import NotFound, RegistryError

MAX_VERSIONS_READ = 10_000  # versions of one model read to know which are present
DEFAULT_CONCURRENCY = 8  # models imported at once (httpx.Client is safe to share between threads)

__all__ = ["DEFAULT_CONCURRENCY", "ModelOutcome", "Present", "apply_plan", "present"]


@dataclass
class ModelOutcome:
    """What happened (or, in a dry run, would happen) to one MLflow model."""

    mlflow_name: str
    name: str
    sent: int = 0  # steps that changed the registry
    present: int = 0  # steps found already done
    skipped: int = 0  # items the plan left out (with reasons in the plan)
    failed: list[str] = field(default_factory=list)  # "<step>: <why>"
    exists: bool = False  # whether the registry held the model before the import
    kept: int = 0  # steps left out because they would change a model that existed
    changes: list[Change] = field(default_factory=list)  # one per step of the plan, in its order

    @property
    def to_send(self) -> int:
        """Steps the import sends (or sent, failed or not)."""
        return sum(change.sends for change in self.changes)


def present(client: RegistryClient, team: str, name: str) -> Present:
    """The model's versions, aliases and own metadata as the registry has them (nothing if it is new)."""
    try:
        model = client.get_model(team, name)
    except NotFound:
        return ABSENT
    versions: dict[str, str] = {}
    origins: dict[str, str] = {}
    headline: dict[str, Any] = {}
    for version in client.versions(team, name, include_prerelease=True, page_size=200):
        versions[version.version] = version.lifecycle
        if "mlflow_version" in version.tags:
            origins[version.version] = version.tags["mlflow_version"]
        if version.version == model.latest_version:
            headline = {"description": version.description, "tags": dict(version.tags)}
        if len(versions) >= MAX_VERSIONS_READ:
            break
    metadata = {"description": model.description, "tags": dict(model.tags), "links": dict(model.links)}
    return Present(True, versions, dict(model.aliases), metadata, origins, model.latest_version, headline)


def apply_plan(
    plan: ImportPlan,
    client: RegistryClient,
    *,
    update_existing: bool = False,
    dry_run: bool = False,
    advance: Callable[[int], None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ModelOutcome]:
    """Send every step of ``plan`` that is not already done (none if ``dry_run``); one outcome per model, in order.

    Models are independent, so several are imported at once (each one's steps stay in order):
    a step is one synchronous HTTP command, and one at a time left the registry mostly waiting.
    """

    def one(model: ModelPlan) -> ModelOutcome:
        return _apply_model(plan, model, client, update_existing=update_existing, dry_run=dry_run, advance=advance)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="import") as pool:
        return list(pool.map(one, plan.models))


def _apply_model(
    plan: ImportPlan,
    model: ModelPlan,
    client: RegistryClient,
    *,
    update_existing: bool,
    dry_run: bool,
    advance: Callable[[int], None] | None,
) -> ModelOutcome:
    have = present(client, model.team, model.name)
    changes = decide(model, have, update_existing=update_existing)
    outcome = ModelOutcome(
        model.mlflow_name,
        model.name,
        skipped=len(plan.skipped_of(model.mlflow_name)),
        exists=have.exists,
        changes=changes,
    )
    for change in changes:
        if change.action == "present":
            outcome.present += 1
        elif change.action == "kept":
            outcome.kept += 1
        elif not dry_run:
            _send(client, change.step, outcome)
        if advance is not None:
            advance(1)
    return outcome


def _send(client: RegistryClient, step: Step, outcome: ModelOutcome) -> None:
    send: Callable[..., Any] = getattr(client, step.kind)
    keyed = {} if step.kind == "set_alias" else {"idempotency_key": step.idempotency_key}
    try:
        send(**step.data, **keyed)
    except RegistryError as error:
        what = step.data.get("alias") or step.data.get("version") or "metadata"
        outcome.failed.append(f"{step.kind} {what}: {error.detail}")
    else:
        outcome.sent += 1
