"""What ``GET /v1/models/{team}/{name}/compare`` answers: versions side by side and how each differs from the base."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from registry_contract.times import UtcTime
from registry_contract.views import Approval, EnvironmentStatus, VersionParent

MAX_COMPARED_VERSIONS = 10  # versions one comparison reads
MAX_VERSION_CHARS = 256  # one asked version (SemVer, @alias or latest), as a version in a path
MAX_VERSIONS_CHARS = MAX_COMPARED_VERSIONS * (MAX_VERSION_CHARS + 1)  # the comma-separated list of them


class ComparedDataset(BaseModel):
    """A dataset a version was trained or evaluated on, as recorded."""

    uri: str
    digest: str | None = None
    name: str | None = None


class ComparedLineage(BaseModel):
    """Where a version came from, as recorded at registration."""

    parent: VersionParent | None = None
    datasets: list[ComparedDataset] = []
    code_repository: str | None = None
    code_commit: str | None = None
    run_id: str | None = None
    run_url: str | None = None
    experiment: str | None = None


class ComparedProvenance(BaseModel):
    """A version's signed provenance, when it was registered with one."""

    verified: bool = False
    signer: str | None = Field(None, description="the trusted signing key's name, else its id")
    key_id: str | None = None
    algorithm: str | None = None
    manifest_digest: str | None = None


class ComparedVersion(BaseModel):
    """One compared version: its state, numbers, labels and lineage."""

    version: str
    prerelease: bool = False
    created_at: UtcTime | None = None
    created_by: str | None = None
    lifecycle: str = "active"
    aliases: list[str] = Field([], description="the model's aliases that point at this version")
    framework: str | None = None
    artifact_digest: str | None = None
    metrics: dict[str, float] = {}
    parameters: dict[str, str] = {}
    tags: dict[str, str] = {}
    lineage: ComparedLineage = ComparedLineage()
    approval: Approval = Approval()
    status: str = Field("registered", description="the most advanced deployment status across environments")
    environments: dict[str, EnvironmentStatus] = Field({}, description="where it stands in each environment")
    provenance: ComparedProvenance | None = Field(None, description="null: registered without a signature")


class MetricDelta(BaseModel):
    """One metric of a version beside the base version's."""

    name: str
    base: float | None = Field(None, description="the base version's value; null when it has none")
    value: float | None = Field(None, description="this version's value; null when it has none")
    delta: float | None = Field(
        None, allow_inf_nan=False, description="value minus base, when both have the metric and it is finite"
    )
    relative: float | None = Field(
        None,
        allow_inf_nan=False,
        description="delta divided by |base|; null when base is 0 or missing, or when it is not finite",
    )


class ValueChange(BaseModel):
    """A value that differs: the base version's and this version's (null where absent)."""

    base: Any = None
    value: Any = None


class MappingDifferences(BaseModel):
    """Keys of a mapping (tags, parameters) this version added, removed or changed against the base."""

    added: dict[str, str] = {}
    removed: dict[str, str] = {}
    changed: dict[str, ValueChange] = {}


class VersionDifferences(BaseModel):
    """How one version differs from the base version."""

    version: str
    metrics: list[MetricDelta] = Field([], description="every metric either version has, by name")
    metrics_only_in_base: list[str] = []
    metrics_only_in_version: list[str] = []
    tags: MappingDifferences = MappingDifferences()
    parameters: MappingDifferences = MappingDifferences()
    datasets_added: list[ComparedDataset] = Field([], description="by uri and digest")
    datasets_removed: list[ComparedDataset] = []
    code_commit: ValueChange | None = Field(None, description="set when the code commit differs")
    code_repository: ValueChange | None = None
    parent: ValueChange | None = Field(None, description="set when the parent differs (team/name@version)")
    approval: ValueChange | None = Field(None, description="set when the approval status differs")
    lifecycle: ValueChange | None = None
    changed: list[str] = Field([], description="the names of the fields above that differ, for a quick glance")


class VersionComparison(BaseModel):
    """Versions of one model side by side (the base first), and how each other version differs from the base."""

    model_id: str
    team: str
    name: str
    base: str = Field(description="the version the others are compared with")
    versions: list[ComparedVersion] = Field(description=f"as asked, the base first; at most {MAX_COMPARED_VERSIONS}")
    environments: list[str] = Field([], description="every environment any compared version was reported in")
    differences: list[VersionDifferences] = Field(description="one per version after the base, in the asked order")
