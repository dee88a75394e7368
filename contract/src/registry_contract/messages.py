"""Typed data of every command, event and report on the contract's topics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import semver
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from registry_contract import catalog
from registry_contract.identity_events import IDENTITY_EVENT_MODELS
from registry_contract.jsonbounds import FIELD_NAME_PATTERN, check_document

# --- ce_type values -------------------------------------------------------------------------
REGISTER_MODEL_VERSION = "registry.command.register_model_version"
UPDATE_MODEL_VERSION = "registry.command.update_model_version"
SET_VERSION_LIFECYCLE = "registry.command.set_version_lifecycle"
SHARE_MODEL = "registry.command.share_model"
UNSHARE_MODEL = "registry.command.unshare_model"
SET_ALIAS = "registry.command.set_alias"
REMOVE_ALIAS = "registry.command.remove_alias"
SET_APPROVAL = "registry.command.set_approval"
UPDATE_MODEL = "registry.command.update_model"
DELETE_VERSION = "registry.command.delete_version"
COMMAND_TYPES = (
    REGISTER_MODEL_VERSION,
    UPDATE_MODEL_VERSION,
    SET_VERSION_LIFECYCLE,
    SHARE_MODEL,
    UNSHARE_MODEL,
    SET_ALIAS,
    REMOVE_ALIAS,
    SET_APPROVAL,
    UPDATE_MODEL,
    DELETE_VERSION,
)

MODEL_VERSION_REGISTERED = "registry.event.model_version_registered"
COMMAND_REJECTED = "registry.event.command_rejected"
MODEL_VERSION_UPDATED = "registry.event.model_version_updated"
VERSION_LIFECYCLE_CHANGED = "registry.event.version_lifecycle_changed"
MODEL_SHARED = "registry.event.model_shared"
MODEL_UNSHARED = "registry.event.model_unshared"
DEPLOYMENT_STATUS_CHANGED = "registry.event.deployment_status_changed"
DEPLOYMENT_REPORT_RECORDED = "registry.event.deployment_report_recorded"
ALIAS_SET = "registry.event.alias_set"
ALIAS_REMOVED = "registry.event.alias_removed"
VERSION_APPROVAL_CHANGED = "registry.event.version_approval_changed"
MODEL_UPDATED = "registry.event.model_updated"
MODEL_VERSION_DELETED = "registry.event.model_version_deleted"

DEPLOY_STATUS_REPORTED = "deploy.event.status_reported"

ACCESS_READ = "registry.access.read"
ACCESS_WRITE = "registry.access.write"
ACCESS_DENIED = "registry.access.denied"
ACCESS_AUTH_FAILED = "registry.access.auth_failed"
ACCESS_RATE_LIMITED = "registry.access.rate_limited"

RejectReason = Literal[
    "invalid",
    "unauthenticated",
    "forbidden",
    "duplicate_version",
    "not_found",
    "conflict",
    "rate_limited",
    "not_approved",
    "bad_signature",
    "unsigned",
]


def _semver(value: str) -> str:
    semver.Version.parse(value)  # raises ValueError with a precise message
    return value


def _bounded_document(value: dict[str, Any]) -> dict[str, Any]:
    check_document(value, max_depth=catalog.MAX_SIGNATURE_DEPTH, max_nodes=catalog.MAX_SIGNATURE_VALUES)
    return value


def _bounded_bundle(value: dict[str, Any]) -> dict[str, Any]:
    check_document(
        value,
        max_depth=catalog.MAX_PROVENANCE_DEPTH,
        max_nodes=catalog.MAX_PROVENANCE_VALUES,
        max_string=catalog.MAX_PROVENANCE_BYTES,
    )
    size = len(json.dumps(value, separators=(",", ":")))
    if size > catalog.MAX_PROVENANCE_BYTES:
        raise ValueError(f"the signature takes {size} bytes as JSON, more than {catalog.MAX_PROVENANCE_BYTES}")
    return value


Slug = Annotated[str, StringConstraints(pattern=catalog.SLUG_PATTERN)]
SemVer = Annotated[str, StringConstraints(max_length=256), AfterValidator(_semver)]
# Keys become MongoDB field names (tags.<key>): no NUL, no ".", no leading "$".
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=catalog.MAX_TAG_KEY, pattern=FIELD_NAME_PATTERN)]
TagValue = Annotated[str, StringConstraints(max_length=catalog.MAX_TAG_VALUE)]
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=catalog.MAX_TAGS)]
Metrics = Annotated[dict[TagKey, Annotated[float, Field(allow_inf_nan=False)]], Field(max_length=catalog.MAX_TAGS)]
# Free-form JSON (a model's input/output schema): bounded in depth, size, keys and numbers.
Signature = Annotated[dict[str, Any], AfterValidator(_bounded_document)]
Description = Annotated[str, StringConstraints(max_length=catalog.MAX_DESCRIPTION)]
Framework = Literal[catalog.FRAMEWORKS]  # type: ignore[valid-type]
DeploymentTarget = Literal[catalog.DEPLOYMENT_TARGETS]  # type: ignore[valid-type]
Lifecycle = Literal["active", "deprecated", "archived"]
ApprovalStatus = Literal["pending", "approved", "rejected"]
# Shown as links by clients: only http(s), never javascript: or data: URLs.
HttpUrl = Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(_Data):
    """Which model a message is about."""

    team: Slug
    name: Slug


class VersionRef(ModelRef):
    """Which version of a model a message is about."""

    version: SemVer


class Dataset(_Data):
    """A dataset a version was trained or evaluated on."""

    uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    digest: Annotated[str, StringConstraints(pattern=r"^sha(256|512):[0-9a-f]{64,128}$")] | None = None
    name: ShortText | None = None


class Source(_Data):
    """Where a version came from: its training run, experiment, code and data."""

    run_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    run_url: HttpUrl | None = None
    experiment: ShortText | None = None
    code_repository: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    code_commit: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{7,64}$")] | None = None
    datasets: Annotated[list[Dataset], Field(max_length=catalog.MAX_DATASETS)] = []


class Contact(_Data):
    """Someone to ask about a model."""

    name: ShortText
    email: Annotated[str, StringConstraints(max_length=256, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    role: Annotated[str, StringConstraints(max_length=64)] | None = None


# An OpenSSF model-signing signature file as JSON: bounded before anything parses it.
SignatureBundle = Annotated[dict[str, Any], AfterValidator(_bounded_bundle)]


class ProvenanceSubmission(_Data):
    """What a producer sends to bind a signed manifest to the version it registers."""

    signature: SignatureBundle = Field(
        description="the signature file OpenSSF model-signing writes (`model_signing.signing.Config()"
        ".use_elliptic_key_signer(...)`): a Sigstore bundle whose DSSE envelope signs an in-toto statement "
        "listing every file of the model with its digest. Verified against the team's signing keys "
        f"(`/v1/teams/{{team}}/signing-keys`); at most {catalog.MAX_PROVENANCE_BYTES} bytes as JSON"
    )


class VersionFields(_Data):
    """Fields a producer supplies when registering a version (team/name/version aside)."""

    framework: Framework
    framework_version: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    artifact_uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    artifact_digest: Annotated[str, StringConstraints(pattern=r"^sha(256|512):[0-9a-f]{64,128}$")] | None = None
    deployment_targets: Annotated[list[DeploymentTarget], Field(max_length=16)] = []
    description: Description = ""
    tags: Tags = {}
    metrics: Metrics = {}
    parameters: Tags = {}
    signature: Signature | None = None
    source: Source | None = None
    parent: VersionRef | None = Field(None, description="the version this one was fine-tuned or derived from")
    provenance: ProvenanceSubmission | None = Field(
        None,
        description="a signature over the model's files (OpenSSF model signing), verified at registration against "
        "the team's signing keys: refused `bad_signature` unless one of them verifies it; the version then "
        "records the verified manifest (`provenance` of the version)",
    )


class RegisterModelVersion(VersionFields, VersionRef):
    """Data of ``registry.command.register_model_version``."""


class UpdateModelVersion(VersionRef):
    """Data of ``registry.command.update_model_version``: only these fields may change."""

    description: Description | None = None
    tags: Tags | None = None
    metrics: Metrics | None = None


class SetVersionLifecycle(VersionRef):
    """Data of ``registry.command.set_version_lifecycle``."""

    state: Lifecycle


class ShareModel(ModelRef):
    """Data of ``registry.command.share_model`` / ``unshare_model``."""

    with_team: Slug


class SetAlias(VersionRef):
    """Data of ``registry.command.set_alias``: point ``alias`` at the version (moving it if it exists)."""

    alias: Slug


class RemoveAlias(ModelRef):
    """Data of ``registry.command.remove_alias``."""

    alias: Slug


class ApprovalDecision(_Data):
    """A decision on a version: approved (it may go where approval is required), rejected, or pending again."""

    status: ApprovalStatus
    comment: Annotated[str, StringConstraints(max_length=catalog.MAX_COMMENT)] | None = None


class SetApproval(ApprovalDecision, VersionRef):
    """Data of ``registry.command.set_approval`` (scope ``models:approve``)."""


class ModelMetadata(_Data):
    """A model's own metadata; in an update, only the fields given change."""

    description: Description | None = None
    owners: Annotated[list[Contact], Field(max_length=catalog.MAX_OWNERS)] | None = None
    documentation: Annotated[str, StringConstraints(max_length=catalog.MAX_DOCUMENTATION)] | None = None
    tags: Tags | None = None
    links: Annotated[dict[TagKey, HttpUrl], Field(max_length=catalog.MAX_LINKS)] | None = None


class UpdateModel(ModelMetadata, ModelRef):
    """Data of ``registry.command.update_model``."""


class DeleteVersion(VersionRef):
    """Data of ``registry.command.delete_version``."""


class ModelVersionRegistered(BaseModel):
    """Data of ``registry.event.model_version_registered``: the version resource as readers see it."""

    model_config = ConfigDict(extra="allow")

    model_id: str
    team: str
    name: str
    version: str
    framework: str
    artifact_uri: str
    lifecycle: str
    status: str


class ModelVersionUpdated(BaseModel):
    """Data of ``registry.event.model_version_updated``."""

    model_id: str
    team: str
    name: str
    version: str
    changes: dict[str, Any]


class VersionLifecycleChanged(BaseModel):
    """Data of ``registry.event.version_lifecycle_changed``."""

    model_config = ConfigDict(populate_by_name=True)

    model_id: str
    team: str
    name: str
    version: str
    from_state: Lifecycle = Field(alias="from")
    to: Lifecycle


class ModelShareChanged(BaseModel):
    """Data of ``registry.event.model_shared`` and ``registry.event.model_unshared``."""

    model_id: str
    team: str
    name: str
    with_team: str


class AliasChanged(BaseModel):
    """Data of ``registry.event.alias_set`` and ``alias_removed``."""

    model_id: str
    team: str
    name: str
    alias: str
    version: str | None = Field(description="the version the alias points at now (null once removed)")
    previous_version: str | None = Field(description="the version it pointed at before (null if new)")


class VersionApprovalChanged(BaseModel):
    """Data of ``registry.event.version_approval_changed``."""

    model_config = ConfigDict(populate_by_name=True)

    model_id: str
    team: str
    name: str
    version: str
    from_status: ApprovalStatus = Field(alias="from")
    to: ApprovalStatus
    by: str
    comment: str | None = None


class ModelUpdated(BaseModel):
    """Data of ``registry.event.model_updated``."""

    model_id: str
    team: str
    name: str
    changes: dict[str, Any]


class ModelVersionDeleted(BaseModel):
    """Data of ``registry.event.model_version_deleted``."""

    model_id: str
    team: str
    name: str
    version: str


class EnvironmentState(BaseModel):
    """Where one environment of a version stands after an applied report (as the tracker stores it)."""

    status: str
    occurred_at: datetime
    report_id: str
    target: str | None = None
    updated_at: datetime


class DeploymentStatusChanged(BaseModel):
    """Data of ``registry.event.deployment_status_changed``."""

    model_id: str
    team: str
    name: str
    version: str
    environment: str
    previous_status: str | None
    status: str
    overall_status: str
    report_id: str
    environment_state: EnvironmentState | None = Field(
        None, description="the environment's whole new state (absent on events of older trackers)"
    )


class DeploymentReportRecorded(BaseModel):
    """A deployment report the tracker filed under a model: applied, out of order, or refused with a reason."""

    id: str = Field(description="the report's CloudEvent id")
    outcome: str = Field(description="applied, out_of_order or rejected")
    reason: str | None = None
    message: str | None = None
    model_id: str
    version_id: str
    team: str
    name: str
    version: str
    environment: str
    status: str
    previous_status: str | None = None
    skipped_deploying: bool = False
    target: str | None = None
    pipeline: str | None = None
    run_id: str | None = None
    url: str | None = None
    occurred_at: datetime
    received_at: datetime
    correlation_id: str | None = None
    reporter: str | None = Field(None, description="the key id that sent the report")
    position: int = Field(description="the report's place in its version's deployment history")


class AccessRecorded(BaseModel):
    """Data of the ``registry.access.*`` events: who tried what, and what happened."""

    principal: str | None
    team: str | None
    method: str
    path: str
    status: int
    reason: str | None = None
    resource_team: str | None = None
    identity: dict[str, Any] | None = Field(
        None,
        description="for a caller that presented an OpenID Connect token: its issuer, subject, the trust rule "
        "that admitted it and the claims that rule matched on",
    )


class CommandRejected(BaseModel):
    """Data of ``registry.event.command_rejected``."""

    command_id: str
    command_type: str
    reason: RejectReason
    message: str
    errors: list[dict[str, Any]] = []
    team: str | None = None
    name: str | None = None


class DeploymentStatusReported(VersionRef):
    """Data of ``deploy.event.status_reported``."""

    environment: Slug
    status: Literal["deploying", "deployed", "failed", "rolled_back", "retired"]
    target: DeploymentTarget | None = None
    pipeline: Annotated[str, StringConstraints(max_length=128)] | None = None
    run_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    # Shown as a link in history: only http(s), never javascript: or data: URLs.
    url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s]+$")] | None = None
    message: Annotated[str, StringConstraints(max_length=4096)] | None = None
    occurred_at: datetime


EVENT_MODELS: dict[str, type[BaseModel]] = {
    MODEL_VERSION_REGISTERED: ModelVersionRegistered,
    COMMAND_REJECTED: CommandRejected,
    MODEL_VERSION_UPDATED: ModelVersionUpdated,
    VERSION_LIFECYCLE_CHANGED: VersionLifecycleChanged,
    MODEL_SHARED: ModelShareChanged,
    MODEL_UNSHARED: ModelShareChanged,
    DEPLOYMENT_STATUS_CHANGED: DeploymentStatusChanged,
    DEPLOYMENT_REPORT_RECORDED: DeploymentReportRecorded,
    ALIAS_SET: AliasChanged,
    ALIAS_REMOVED: AliasChanged,
    VERSION_APPROVAL_CHANGED: VersionApprovalChanged,
    MODEL_UPDATED: ModelUpdated,
    MODEL_VERSION_DELETED: ModelVersionDeleted,
    **IDENTITY_EVENT_MODELS,  # keys and webhooks (registry_contract.identity_events)
    DEPLOY_STATUS_REPORTED: DeploymentStatusReported,
    ACCESS_READ: AccessRecorded,
    ACCESS_WRITE: AccessRecorded,
    ACCESS_DENIED: AccessRecorded,
    ACCESS_AUTH_FAILED: AccessRecorded,
    ACCESS_RATE_LIMITED: AccessRecorded,
}

COMMAND_MODELS: dict[str, type[ModelRef]] = {
    REGISTER_MODEL_VERSION: RegisterModelVersion,
    UPDATE_MODEL_VERSION: UpdateModelVersion,
    SET_VERSION_LIFECYCLE: SetVersionLifecycle,
    SHARE_MODEL: ShareModel,
    UNSHARE_MODEL: ShareModel,
    SET_ALIAS: SetAlias,
    REMOVE_ALIAS: RemoveAlias,
    SET_APPROVAL: SetApproval,
    UPDATE_MODEL: UpdateModel,
    DELETE_VERSION: DeleteVersion,
}
