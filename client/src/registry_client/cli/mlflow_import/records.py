"""What the MLflow import reads from a tracking server: typed views of MLflow's REST answers.

The shapes follow MLflow's protobuf messages as its REST API serialises them (proto3 JSON: a field
at its default value, such as an empty list or string, may be left out, so every field has one).
Tags arrive as lists of ``{key, value}`` and are kept as dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
READY = "READY"


def _pairs(value: Any) -> Any:
    """``[{"key": k, "value": v}, …]`` → ``{k: v}`` (entries without a key are dropped, a missing value is "")."""
    if not isinstance(value, list):
        return value
    pairs = (item for item in value if isinstance(item, dict) and item.get("key"))
    return {str(item["key"]): "" if item.get("value") is None else item["value"] for item in pairs}


def _metrics(value: Any) -> Any:
    """A run's ``[{"key", "value", "timestamp", "step"}, …]`` → ``{key: value}`` (entries without a value dropped)."""
    if not isinstance(value, list):
        return value
    return {str(m["key"]): m["value"] for m in value if isinstance(m, dict) and m.get("key") and "value" in m}


def _none_if_empty(value: Any) -> Any:
    return value or None


class _Read(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class MlflowAlias(_Read):
    """An alias of a registered model (``RegisteredModelAlias``)."""

    alias: str
    version: int


class MlflowModelVersion(_Read):
    """One version of a registered model (``ModelVersion``), plus what the reader resolved for it."""

    name: str
    version: int
    current_stage: str = STAGE_NONE
    description: str = ""
    source: str = ""
    run_id: str | None = None
    run_link: str | None = None
    status: str = READY
    status_message: str = ""
    tags: dict[str, str] = {}
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    # Resolved by the reader, not part of MLflow's answer:
    storage_location: str | None = None  # where a ``models:/`` source's files are (get-download-uri)
    flavors: dict[str, Any] | None = None  # the ``flavors`` of the version's MLmodel file, when read

    _tags = field_validator("tags", mode="before")(_pairs)
    _empty = field_validator("run_id", "run_link", mode="before")(_none_if_empty)


class MlflowRegisteredModel(_Read):
    """A registered model (``RegisteredModel``) and, once the reader has paged through them, its versions."""

    name: str
    description: str = ""
    tags: dict[str, str] = {}
    aliases: tuple[MlflowAlias, ...] = ()
    creation_timestamp: int | None = None
    last_updated_timestamp: int | None = None
    versions: tuple[MlflowModelVersion, ...] = ()  # filled by the reader, in version order

    _tags = field_validator("tags", mode="before")(_pairs)


class MlflowRun(_Read):
    """The parts of a run (``Run``: its ``info`` and ``data``) that say where a version came from."""

    run_id: str
    experiment_id: str
    run_name: str = ""
    status: str = ""
    artifact_uri: str = ""
    lifecycle_stage: str = ""
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}  # latest value of each metric
    params: dict[str, str] = {}
    experiment_name: str | None = None  # resolved by the reader (experiments/get)

    @classmethod
    def from_api(cls, run: dict[str, Any]) -> MlflowRun:
        """Flatten runs/get's ``run`` (``{"info": …, "data": {"tags", "metrics", "params"}}``)."""
        info, data = run.get("info") or {}, run.get("data") or {}
        return cls.model_validate(
            {
                **info,
                "run_id": info.get("run_id") or info.get("run_uuid"),
                "tags": _pairs(data.get("tags") or []),
                "metrics": _metrics(data.get("metrics") or []),
                "params": _pairs(data.get("params") or []),
            }
        )


@dataclass(frozen=True)
class MlflowSnapshot:
    """Everything read from one tracking server: the input of :func:`.mapping.build_plan`."""

    tracking_uri: str
    models: tuple[MlflowRegisteredModel, ...]
    runs: dict[str, MlflowRun] = field(default_factory=dict)  # by run id; a run that could not be read is absent
    notes: tuple[str, ...] = ()  # what the reader left out or could not read, one sentence each
    listed: tuple[str, ...] = ()  # every registered model's name the listing found, chosen or not
