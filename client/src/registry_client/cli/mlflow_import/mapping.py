"""What each MLflow registered model becomes in this registry: a pure function from a snapshot to a plan.

- The model's name becomes a slug (the original kept as tag ``mlflow_name``); its description,
  tags and a link back to MLflow become the model's metadata.
- Version ``N`` becomes ``N.0.0`` (tag ``mlflow_version``), with its description and tags, the
  framework its flavors name (else ``default_framework``), its files' location as ``artifact_uri``
  (``models:/`` sources as MLflow resolved them, ``runs:/`` ones under their run's artifact root;
  only the allowed schemes), and its run as lineage (run id and URL, experiment, git commit and
  repository) plus the run's metrics and params.
- Legacy stages ``Production``/``Staging`` become aliases ``production``/``staging`` (on the newest
  version in the stage), MLflow aliases become aliases (as slugs), ``Archived`` becomes lifecycle
  ``archived``, and an alias never points at an archived version.

Tag keys lose their dots (``mlflow.source.name`` → ``mlflow_source_name``; see :func:`.naming.tag_key`):
the registry stores tags as document fields. Anything left out is a ``skipped`` finding, anything
cut or defaulted on the way an ``adjusted`` one; every command is checked against the contract's model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ValidationError

from registry_client.cli.mlflow_import.naming import SLUG, framework_of, logged_flavors, semver_of, slugify, tag_key
from registry_client.cli.mlflow_import.plan import AliasPlan, Finding, ImportPlan, LifecyclePlan, ModelPlan, VersionPlan
from registry_client.cli.mlflow_import.records import (
    READY,
    STAGE_ARCHIVED,
    STAGE_NONE,
    MlflowModelVersion,
    MlflowRegisteredModel,
    MlflowRun,
    MlflowSnapshot,
)
from registry_contract import catalog, messages

STAGE_ALIASES = {"Production": "production", "Staging": "staging"}
MAX_ALIASES = 32  # the registration service's limit per model
MAX_URI = 2048
GIT_COMMIT = "mlflow.source.git.commit"
GIT_REPOSITORIES = ("mlflow.source.git.repoURL", "mlflow.gitRepoURL")
SOURCE_NAME = "mlflow.source.name"
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
_HTTP = re.compile(r"^https?://[^\s]+$")


@dataclass(frozen=True)
class MappingOptions:
    """Choices of an import that MLflow's data cannot make."""

    team: str
    default_framework: str = "custom"  # for versions whose flavors name no framework
    artifact_schemes: tuple[str, ...] = catalog.DEFAULT_ARTIFACT_SCHEMES  # the registry's allowed schemes
    run_metrics: bool = True  # copy each version's run metrics and params

    def __post_init__(self) -> None:
        if not SLUG.match(self.team):
            raise ValueError(f"team {self.team!r} is not a slug ({catalog.SLUG_PATTERN})")
        if self.default_framework not in catalog.FRAMEWORKS:
            raise ValueError(f"default framework must be one of {', '.join(catalog.FRAMEWORKS)}")


def build_plan(snapshot: MlflowSnapshot, options: MappingOptions) -> ImportPlan:
    """The plan for every model of ``snapshot``, in its order; a slug already taken skips the later model."""
    mapper = _Mapper(snapshot, options)
    taken: dict[str, str] = {}
    models: list[ModelPlan] = []
    for model in snapshot.models:
        slug = slugify(model.name)
        if slug is None:
            mapper.skip(model.name, "model", "its name has no letter or digit to make a slug of")
        elif slug in taken:
            mapper.skip(model.name, "model", f"its slug {slug!r} is already that of {taken[slug]!r}")
        else:
            taken[slug] = model.name
            if (plan := mapper.model(model, slug)) is not None:
                models.append(plan)
    return ImportPlan(
        tracking_uri=snapshot.tracking_uri,
        team=options.team,
        models=tuple(models),
        skipped=tuple(mapper.skipped),
        adjusted=tuple(mapper.adjusted),
        read_notes=snapshot.notes,
    )


class _Mapper:
    """Maps models one at a time, collecting what it skips and adjusts."""

    def __init__(self, snapshot: MlflowSnapshot, options: MappingOptions) -> None:
        self.snapshot, self.options = snapshot, options
        self.tracking_uri = snapshot.tracking_uri.rstrip("/")
        self.skipped: list[Finding] = []
        self.adjusted: list[Finding] = []
        self.unflavored: list[int] = []  # versions of the current model without flavors

    def skip(self, model: str, item: str, reason: str) -> None:
        self.skipped.append(Finding(model, item, reason))

    def adjust(self, model: str, item: str, reason: str) -> None:
        self.adjusted.append(Finding(model, item, reason))

    def model(self, model: MlflowRegisteredModel, slug: str) -> ModelPlan | None:
        ref = {"team": self.options.team, "name": slug}
        self.unflavored = []
        versions = [v for mv in model.versions if (v := self.version(model.name, mv, ref)) is not None]
        if self.unflavored:
            numbers = ", ".join(map(str, self.unflavored))
            reason = f"MLflow recorded no flavors: framework {self.options.default_framework!r}"
            self.adjust(model.name, f"versions {numbers}" if len(self.unflavored) > 1 else f"version {numbers}", reason)
        if not versions:
            self.skip(model.name, "model", "no version of it can be imported")
            return None
        try:
            metadata = self.metadata(model, ref)
        except ValueError as exc:
            self.skip(model.name, "model", f"its metadata: {exc}")
            return None
        by_number = {v.mlflow_version: v for v in versions}
        archived = {
            mv.version for mv in model.versions if mv.current_stage == STAGE_ARCHIVED and mv.version in by_number
        }
        return ModelPlan(
            mlflow_name=model.name,
            team=self.options.team,
            name=slug,
            metadata=metadata,
            versions=tuple(versions),
            aliases=tuple(self.aliases(model, by_number, archived)),
            lifecycle=tuple(LifecyclePlan(by_number[n].version, "archived") for n in sorted(archived)),
        )

    def metadata(self, model: MlflowRegisteredModel, ref: dict[str, str]) -> dict[str, Any]:
        data: dict[str, Any] = {"tags": self.tags(model.name, "model", {"mlflow_name": model.name}, model.tags)}
        if model.description:
            data["description"] = self.text(model.name, "model description", model.description)
        if _HTTP.match(self.tracking_uri):
            data["links"] = {"mlflow": f"{self.tracking_uri}/#/models/{quote(model.name, safe='')}"}
        _check(messages.UpdateModel, {**ref, **data})
        return data

    def version(self, name: str, mv: MlflowModelVersion, ref: dict[str, str]) -> VersionPlan | None:
        item = f"version {mv.version}"
        if mv.status != READY:
            self.skip(name, item, f"its status is {mv.status} {mv.status_message}".rstrip())
            return None
        run = self.snapshot.runs.get(mv.run_id) if mv.run_id else None
        uri, refusal = self.artifact_uri(mv)
        if uri is None:
            self.skip(name, item, refusal or "it has no artifact location")
            return None
        version = semver_of(mv.version)
        own = {"mlflow_version": str(mv.version)}
        if mv.current_stage != STAGE_NONE:
            own["mlflow_stage"] = mv.current_stage
        if run and run.run_name:
            own["mlflow_run_name"] = run.run_name
        if run and run.tags.get(SOURCE_NAME):
            own["mlflow_source_name"] = run.tags[SOURCE_NAME]
        if mv.source != uri:
            own["mlflow_source"] = mv.source
        data: dict[str, Any] = {**ref, "version": version, **self.framework(name, mv, run), "artifact_uri": uri}
        if mv.description:
            data["description"] = self.text(name, f"{item} description", mv.description)
        data["tags"] = self.tags(name, item, own, mv.tags)
        if run and self.options.run_metrics:
            data |= self.run_values(name, item, run)
        if mv.run_id:
            data["source"] = self.lineage(name, item, mv, run)
        try:
            _check(messages.RegisterModelVersion, data)
        except ValueError as exc:
            self.skip(name, item, str(exc))
            return None
        return VersionPlan(mv.version, version, data)

    def artifact_uri(self, mv: MlflowModelVersion) -> tuple[str | None, str | None]:
        """Where the version's files are, or why they cannot be named here."""
        uri = mv.storage_location or mv.source
        parts = urlsplit(mv.source)
        if parts.scheme == "runs":  # runs:/<run id>/<path>, relative to the run's artifact root
            run_id, _, path = parts.path.lstrip("/").partition("/")
            run = self.snapshot.runs.get(run_id)
            if run is None or not run.artifact_uri:
                return None, f"its source {mv.source} needs run {run_id}, which was not read"
            uri = run.artifact_uri.rstrip("/") + ("/" + path if path else "")
        parts = urlsplit(uri)
        allowed = ", ".join(f"{s}://" for s in self.options.artifact_schemes)
        if len(parts.scheme) <= 1:  # no scheme, or a Windows drive letter
            return None, f"its files are at a local path of the MLflow server ({uri}), not on {allowed}"
        if parts.scheme not in self.options.artifact_schemes:
            return None, f"its files are at {uri}, not on an allowed scheme ({allowed})"
        if not parts.netloc or not parts.path.strip("/"):
            return None, f"its artifact location {uri} names no bucket or no key"
        if len(uri) > MAX_URI:
            return None, f"its artifact location is longer than {MAX_URI} characters"
        return uri, None

    def framework(self, name: str, mv: MlflowModelVersion, run: MlflowRun | None) -> dict[str, str]:
        flavors = mv.flavors if mv.flavors is not None else (logged_flavors(run.tags, mv.source) if run else None)
        default = self.options.default_framework
        if not flavors:
            self.unflavored.append(mv.version)
            return {"framework": default}
        framework, framework_version, unknown = framework_of(flavors)
        if framework is None:
            self.adjust(
                name, f"version {mv.version}", f"flavors {', '.join(unknown)} name no framework here: {default!r}"
            )
            return {"framework": default}
        return {"framework": framework, **({"framework_version": framework_version} if framework_version else {})}

    def lineage(self, name: str, item: str, mv: MlflowModelVersion, run: MlflowRun | None) -> dict[str, Any]:
        assert mv.run_id is not None
        source: dict[str, Any] = {"run_id": mv.run_id[:128]}
        if mv.run_link and _HTTP.match(mv.run_link) and len(mv.run_link) <= MAX_URI:
            source["run_url"] = mv.run_link
        elif run and _HTTP.match(self.tracking_uri):
            experiment, run_id = quote(run.experiment_id, safe=""), quote(run.run_id, safe="")
            source["run_url"] = f"{self.tracking_uri}/#/experiments/{experiment}/runs/{run_id}"
        if run is None:
            return source
        if run.experiment_name:
            source["experiment"] = run.experiment_name[:256]
        repository = next((run.tags[k] for k in GIT_REPOSITORIES if run.tags.get(k)), None)
        if repository and len(repository) <= MAX_URI:
            source["code_repository"] = repository
        commit = run.tags.get(GIT_COMMIT, "").strip().lower()
        if _COMMIT.match(commit):
            source["code_commit"] = commit
        elif commit:
            self.adjust(name, item, f"the run's git commit {commit[:80]!r} is not a hex commit id: left out")
        return source

    def run_values(self, name: str, item: str, run: MlflowRun) -> dict[str, Any]:
        """The run's metrics and params as the version's ``metrics`` and ``parameters`` (at most 64 of each)."""
        metrics = {k: v for k, v in sorted(run.metrics.items()) if math.isfinite(v)}
        params = {k: v for k, v in sorted(run.params.items()) if len(v) <= catalog.MAX_TAG_VALUE}
        kept_metrics, kept_params = _keyed(metrics), _keyed(params)
        left = len(run.metrics) - len(kept_metrics) + len(run.params) - len(kept_params)
        if left:
            self.adjust(
                name,
                item,
                f"{left} of the run's metrics and params left out (non-finite, too long, "
                f"or past {catalog.MAX_TAGS} of each)",
            )
        return {
            **({"metrics": kept_metrics} if kept_metrics else {}),
            **({"parameters": kept_params} if kept_params else {}),
        }

    def aliases(
        self, model: MlflowRegisteredModel, versions: Mapping[int, VersionPlan], archived: set[int]
    ) -> list[AliasPlan]:
        """MLflow's aliases first (explicit, and newer), then what the legacy stages imply."""
        name = model.name
        chosen_by: dict[str, AliasPlan] = {}
        wanted = [(a.alias, a.version, f"alias {a.alias!r}") for a in sorted(model.aliases, key=lambda a: a.alias)]
        for stage, alias in STAGE_ALIASES.items():
            in_stage = [mv.version for mv in model.versions if mv.current_stage == stage and mv.version in versions]
            for older in sorted(in_stage)[:-1]:
                self.skip(
                    name,
                    f"stage {stage!r} of version {older}",
                    f"alias {alias!r} goes to the newest version in {stage}, {max(in_stage)}",
                )
            if in_stage:
                wanted.append((alias, max(in_stage), f"stage {stage!r}"))
        for original, number, origin in wanted:
            slug = slugify(original)
            if slug is None:
                self.skip(name, origin, "it has no letter or digit to make a slug of")
            elif number not in versions:
                self.skip(name, origin, f"version {number} is not imported")
            elif number in archived:
                self.skip(name, origin, f"version {number} is archived: an alias cannot point at it")
            elif slug in chosen_by:
                self.skip(name, origin, f"alias {slug!r} already comes from {chosen_by[slug].origin}")
            elif len(chosen_by) >= MAX_ALIASES:
                self.skip(name, origin, f"a model has at most {MAX_ALIASES} aliases")
            else:
                chosen_by[slug] = AliasPlan(slug, versions[number].version, origin)
        return list(chosen_by.values())

    def tags(self, name: str, item: str, own: dict[str, str], theirs: Mapping[str, str]) -> dict[str, str]:
        """``own`` (the import's ``mlflow_*`` tags) then MLflow's tags with registry keys, within the limits."""
        tags: dict[str, str] = {}
        for key, value in [*own.items(), *sorted(theirs.items())]:
            new_key = tag_key(key)
            if new_key is None:
                self.skip(name, f"{item} tag {key[:80]!r}", f"its key is longer than {catalog.MAX_TAG_KEY} characters")
            elif new_key in tags:
                self.skip(name, f"{item} tag {key!r}", f"its key {new_key!r} is already taken")
            elif len(value) > catalog.MAX_TAG_VALUE:
                self.skip(name, f"{item} tag {key!r}", f"its value is longer than {catalog.MAX_TAG_VALUE} characters")
            elif len(tags) >= catalog.MAX_TAGS:
                self.skip(name, f"{item} tag {key!r}", f"at most {catalog.MAX_TAGS} tags")
            else:
                tags[new_key] = value
        return tags

    def text(self, name: str, item: str, text: str) -> str:
        if len(text) <= catalog.MAX_DESCRIPTION:
            return text
        self.adjust(name, item, f"cut to {catalog.MAX_DESCRIPTION} characters (of {len(text)})")
        return text[: catalog.MAX_DESCRIPTION - 1] + "…"


def _keyed(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values under registry keys, the first of colliding keys kept, at most ``MAX_TAGS``."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        new_key = tag_key(key)
        if new_key and new_key not in kept and len(kept) < catalog.MAX_TAGS:
            kept[new_key] = value
    return kept


def _check(model: type[BaseModel], data: dict[str, Any]) -> None:
    """Validate ``data`` with its contract model; a refusal becomes a ``ValueError`` naming the fields."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"the registry would refuse it ({problems})") from None
