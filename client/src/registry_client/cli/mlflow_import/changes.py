"""What one model's plan would do to what the registry already holds: one :class:`Change` per step.

A model the registry does not hold yet is created whole. A model it holds gains the versions it
lacks (archived too if MLflow archived them), and nothing else changes unless ``update_existing``:
its aliases, description, tags, links and the lifecycle of the versions it had stay as they are,
and each step that would change them is ``kept`` and says what differs. With ``update_existing``
they change, and MLflow's tags and links are merged into the model's (its values win; nothing is
dropped). A version of the same number that did not come from this MLflow version (no matching
``mlflow_version`` tag) is never touched, nor is an alias or lifecycle move that would name it.

A model shows its latest version's description and tags until it has its own; a version the
import adds may become the latest and would change what the model shows. So before such a
version is added, the description and tags the model shows are made its own (``pin``): they
stay as they are. Deciding reads nothing: :func:`.apply.present` reads the registry first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from registry_client.cli.mlflow_import.plan import ModelPlan, Step
from registry_contract.versioning import precedence_key

Action = Literal["create", "pin", "add", "change", "present", "kept"]
SENDING: frozenset[Action] = frozenset({"create", "pin", "add", "change"})
MAX_SHOWN = 60  # characters of a value quoted in a change's detail
METADATA = ("description", "tags", "links")  # the model's own fields an import sets


@dataclass(frozen=True)
class Present:
    """What the registry already holds of one model."""

    exists: bool
    versions: dict[str, str]  # version -> lifecycle
    aliases: dict[str, str]
    metadata: dict[str, Any]  # description, tags, links
    origins: dict[str, str] = field(default_factory=dict)  # version -> its ``mlflow_version`` tag, if any
    latest: str | None = None  # the version whose fields the model shows (its latest)
    headline: dict[str, Any] = field(default_factory=dict)  # that version's description and tags


ABSENT = Present(False, {}, {}, {})


@dataclass(frozen=True)
class Change:
    """What one step of the plan does: the :data:`SENDING` actions send ``step``; ``present`` and ``kept`` do not."""

    action: Action
    step: Step  # for ``change`` of the metadata: only the fields that differ, tags and links merged
    item: str  # "version 3.0.0 (MLflow version 3)", "alias champion → 3.0.0 (MLflow alias 'Champion')" …
    detail: str = ""  # for ``change`` and ``kept``: what the registry has and what MLflow has

    @property
    def sends(self) -> bool:
        """Whether applying the plan sends this step."""
        return self.action in SENDING

    @property
    def target(self) -> dict[str, Any]:
        """The step's object, for scripts: its version, alias, state or metadata fields."""
        data = self.step.data
        if self.step.kind == "update_model":
            return {"fields": sorted(k for k in data if k not in ("team", "name"))}
        return {k: data[k] for k in ("alias", "version", "state") if k in data}


def decide(model: ModelPlan, have: Present, *, update_existing: bool = False) -> list[Change]:
    """One change per step of ``model``, in its order, given what the registry holds (``have``)."""
    if not have.exists:
        return [Change("create", step, describe(step, model)) for step in model.steps()]
    foreign = {
        v.version
        for v in model.versions
        if v.version in have.versions and have.origins.get(v.version) != str(v.mlflow_version)
    }
    decider = _Existing(model, have, foreign, update_existing)
    return [*_pin(model, have), *(decider.change(step) for step in model.steps())]


def _pin(model: ModelPlan, have: Present) -> list[Change]:
    """The model's shown description and tags made its own, if an added version would otherwise replace them."""
    if have.latest is None:
        return []
    archived = {move.version for move in model.lifecycle}  # leave the latest again once archived
    added = [v.version for v in model.versions if v.version not in have.versions and v.version not in archived]
    newer = [v for v in added if _rank(v) > _rank(have.latest)]
    if not newer:
        return []
    shown = {
        key: have.metadata[key]
        for key in ("description", "tags")
        if have.metadata.get(key) and have.metadata.get(key) == have.headline.get(key)
    }
    if not shown:
        return []
    step = Step("update_model", {"team": model.team, "name": model.name, **shown})
    detail = f"they are version {have.latest}'s, and version {max(newer, key=_rank)} would show its own instead"
    return [Change("pin", step, "model " + ", ".join(shown) + " kept as shown", detail)]


def _rank(version: str) -> str:
    """The order in which a version becomes a model's latest: stable before prerelease, then precedence."""
    stable = "-" not in version.partition("+")[0]
    return ("1" if stable else "0") + precedence_key(version)


def describe(step: Step, model: ModelPlan) -> str:
    """The step in words: what it registers, sets or moves."""
    data = step.data
    if step.kind == "register_version":
        origin = (data.get("tags") or {}).get("mlflow_version")
        return f"version {data['version']}" + (f" (MLflow version {origin})" if origin else "")
    if step.kind == "update_model":
        return f"model metadata ({', '.join(k for k in METADATA if k in data)})"
    if step.kind == "set_alias":
        origin = next((a.origin for a in model.aliases if a.alias == data["alias"]), "")
        return f"alias {data['alias']} → {data['version']}" + (f" (MLflow {origin})" if origin else "")
    return f"version {data['version']} → {data['state']}"


@dataclass(frozen=True)
class _Existing:
    """The decisions for a model the registry already holds."""

    model: ModelPlan
    have: Present
    foreign: set[str]  # versions of the plan the registry holds that did not come from these MLflow versions
    update_existing: bool

    def change(self, step: Step) -> Change:
        item = describe(step, self.model)
        if step.kind == "register_version":
            return self.version(step, item)
        if step.kind == "update_model":
            return self.metadata(step, item)
        version = step.data["version"]
        if version in self.foreign:
            return Change("kept", step, item, f"the registry's {version} did not come from MLflow: left as it is")
        if step.kind == "set_alias":
            return self.alias(step, item)
        return self.lifecycle(step, item)

    def version(self, step: Step, item: str) -> Change:
        version = step.data["version"]
        if version not in self.have.versions:
            return Change("add", step, item)
        if version in self.foreign:
            origin = self.have.origins.get(version)
            came = f"from MLflow version {origin}" if origin else "not from MLflow"
            return Change("kept", step, item, f"the registry already has a {version}, {came}: left as it is")
        return Change("present", step, item)

    def metadata(self, step: Step, item: str) -> Change:
        differs: dict[str, Any] = {}
        said: list[str] = []
        for key in METADATA:
            wanted = step.data.get(key)
            if wanted is None:
                continue
            now = self.have.metadata.get(key)
            if isinstance(wanted, dict):
                merged = {**(now or {}), **wanted}
                if merged != (now or {}):
                    differs[key] = merged
                    said.append(f"{key}: {_mapping_difference(now or {}, wanted, applied=self.update_existing)}")
            elif wanted != now:
                differs[key] = wanted
                moved = f"{_shown(now)} → {_shown(wanted)}"
                said.append(
                    f"{key}: " + (moved if self.update_existing else f"stays {_shown(now)} (MLflow: {_shown(wanted)})")
                )
        if not differs:
            return Change("present", step, item)
        ref = {"team": step.data["team"], "name": step.data["name"]}
        detail = "; ".join(said)
        if self.update_existing:
            return Change("change", Step("update_model", {**ref, **differs}), "model metadata", detail)
        return Change("kept", step, "model metadata", detail)

    def alias(self, step: Step, item: str) -> Change:
        alias, version = step.data["alias"], step.data["version"]
        now = self.have.aliases.get(alias)
        if now == version:
            return Change("present", step, item)
        if self.update_existing:
            return Change("change", step, item, f"moves from {now}" if now else "a new alias of this model")
        return Change("kept", step, item, f"stays on {now}" if now else "not set on a model that existed")

    def lifecycle(self, step: Step, item: str) -> Change:
        version, state = step.data["version"], step.data["state"]
        if version not in self.have.versions:
            return Change("add", step, item)
        now = self.have.versions[version]
        if now == state:
            return Change("present", step, item)
        if self.update_existing:
            return Change("change", step, item, f"from {now}")
        return Change("kept", step, item, f"stays {now}")


def _mapping_difference(now: dict[str, Any], wanted: dict[str, Any], *, applied: bool) -> str:
    """The keys whose values differ and the keys only MLflow has, as applied or as kept."""
    differ = [k for k, v in wanted.items() if k in now and now[k] != v]
    new = ", ".join(k for k in wanted if k not in now)
    if applied:
        said = [f"{k} {_shown(now[k])} → {_shown(wanted[k])}" for k in differ] + ([f"adds {new}"] if new else [])
    else:
        said = [f"{k} stays {_shown(now[k])} (MLflow: {_shown(wanted[k])})" for k in differ]
        said += [f"{new} not added"] if new else []
    return ", ".join(said)


def _shown(value: Any) -> str:
    """A value quoted, cut to :data:`MAX_SHOWN` characters."""
    if value is None or value == "":
        return "none"
    text = str(value)
    return repr(text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…")
