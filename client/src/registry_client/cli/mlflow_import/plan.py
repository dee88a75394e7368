"""The plan of an MLflow import: the commands to send, in the order that works, and what was left out.

Applying it is one loop (``for model, step in plan.steps()``): each :class:`Step`'s ``data`` is
its contract command's data (``registry_contract.messages``), whose fields are also the keyword
arguments of the registry client's method named ``step.kind`` (``register_version``,
``update_model``, ``set_alias``, ``set_lifecycle``). ``step.idempotency_key`` is a digest of the
step, so a re-run sends an unchanged step under the same key and the registry replays its first
outcome. What a re-run finds already done under another key answers 409: ``duplicate_version``
(the version exists), or ``conflict`` (the alias already points there; the version is archived).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from registry_contract import messages

StepKind = Literal["register_version", "update_model", "set_alias", "set_lifecycle"]
COMMAND_TYPES: dict[StepKind, str] = {
    "register_version": messages.REGISTER_MODEL_VERSION,
    "update_model": messages.UPDATE_MODEL,
    "set_alias": messages.SET_ALIAS,
    "set_lifecycle": messages.SET_VERSION_LIFECYCLE,
}


@dataclass(frozen=True)
class Step:
    """One command to send to the registry."""

    kind: StepKind
    data: dict[str, Any]  # the command's data, JSON-ready: valid for the contract model of ``command_type``

    @property
    def command_type(self) -> str:
        """Its ``ce_type`` on ``registry.commands`` (to send it over Kafka instead of HTTP)."""
        return COMMAND_TYPES[self.kind]

    @property
    def idempotency_key(self) -> str:
        """The same for the same step on every run (an ``Idempotency-Key`` or a ``ce_id``)."""
        canonical = json.dumps([self.kind, self.data], sort_keys=True, separators=(",", ":"))
        return "mlflow-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class VersionPlan:
    """An MLflow version to register: integer ``N`` becomes ``N.0.0``."""

    mlflow_version: int
    version: str
    register: dict[str, Any]  # ``RegisterModelVersion`` data (team, name, version, framework, artifact_uri, …)


@dataclass(frozen=True)
class AliasPlan:
    """An alias to point at an imported version, and what it came from in MLflow."""

    alias: str
    version: str
    origin: str  # "alias 'Champion'" or "stage 'Production'"


@dataclass(frozen=True)
class LifecyclePlan:
    """A lifecycle move of an imported version (MLflow's ``Archived`` stage → ``archived``)."""

    version: str
    state: Literal["archived"]


@dataclass(frozen=True)
class ModelPlan:
    """What one MLflow registered model becomes in the registry."""

    mlflow_name: str
    team: str
    name: str  # the slug
    metadata: dict[str, Any]  # ``ModelMetadata`` fields: description, tags, links
    versions: tuple[VersionPlan, ...]  # in version order
    aliases: tuple[AliasPlan, ...]
    lifecycle: tuple[LifecyclePlan, ...]

    def steps(self) -> Iterator[Step]:
        """Versions first (the first creates the model), then its metadata, aliases, and archiving last.

        Aliases go before archiving so that an alias moving off a version about to be archived
        has moved when the archive is asked for (the registry refuses to archive a version an
        alias names, and never lets an alias point at an archived one).
        """
        ref = {"team": self.team, "name": self.name}
        for version in self.versions:
            yield Step("register_version", version.register)
        yield Step("update_model", {**ref, **self.metadata})
        for alias in self.aliases:
            yield Step("set_alias", {**ref, "alias": alias.alias, "version": alias.version})
        for move in self.lifecycle:
            yield Step("set_lifecycle", {**ref, "version": move.version, "state": move.state})


@dataclass(frozen=True)
class Finding:
    """Something of an MLflow model that was left out (skipped) or changed on the way (adjusted)."""

    mlflow_name: str
    item: str  # "model", "version 3", "alias 'Champion'", "tag 'k'" …
    reason: str


@dataclass(frozen=True)
class ImportPlan:
    """The whole import: per model what to send, and everything left out or changed, with reasons."""

    tracking_uri: str
    team: str
    models: tuple[ModelPlan, ...]
    skipped: tuple[Finding, ...] = ()
    adjusted: tuple[Finding, ...] = ()
    read_notes: tuple[str, ...] = ()  # what the reader could not read (the snapshot's notes)

    def steps(self) -> Iterator[tuple[ModelPlan, Step]]:
        """Every step of every model, in the order to send them."""
        for model in self.models:
            for step in model.steps():
                yield model, step

    def step_count(self) -> int:
        """How many steps :meth:`steps` yields (a progress bar's total)."""
        return sum(1 + len(m.versions) + len(m.aliases) + len(m.lifecycle) for m in self.models)

    def skipped_of(self, mlflow_name: str) -> tuple[Finding, ...]:
        """What was left out of one MLflow model."""
        return tuple(f for f in self.skipped if f.mlflow_name == mlflow_name)
