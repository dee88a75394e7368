"""Public shapes of stored documents, shared by the write side (event data) and the read side.

These pydantic models are the HTTP responses (``response_model``, so ``/openapi.json`` documents
them) and the data of the events that carry a whole resource; times are written one way
(:data:`registry_contract.times.UtcTime`).
"""

from __future__ import annotations

import functools
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from registry_contract.documents import Document
from registry_contract.times import UtcTime

Item = TypeVar("Item")


def stored_fields(view: type[BaseModel], doc: Document) -> dict[str, Any]:
    """The fields of stored ``doc`` that ``view`` shows, leaving out those stored as None."""
    shown = _field_names(view)
    return {k: v for k, v in doc.items() if k in shown and v is not None}


@functools.cache
def _field_names(view: type[BaseModel]) -> frozenset[str]:
    # Once per view: reading ``model_fields`` per key cost a list of 200 models a quarter of its time.
    return frozenset(view.model_fields)


class EnvironmentStatus(BaseModel):
    """Where a version stands in one environment (its latest accepted report)."""

    status: str
    occurred_at: UtcTime
    report_id: str
    target: str | None = None
    updated_at: UtcTime


class Approval(BaseModel):
    """Whether a version may go where approval is required: ``pending`` until someone decides."""

    status: str = "pending"
    by: str | None = Field(None, description="the key id that decided")
    at: UtcTime | None = None
    comment: str | None = None


class VersionParent(BaseModel):
    """The version another was fine-tuned or derived from."""

    team: str
    name: str
    version: str


class ProvenanceSigner(BaseModel):
    """The team signing key that verified a version's signature."""

    key_id: str
    name: str = Field(description="the key's name when the version was registered")
    fingerprint: str = Field(description="sha256:<hex> of the key's DER SubjectPublicKeyInfo")


class ManifestFile(BaseModel):
    """One file (or shard) of a signed model, with its digest."""

    name: str = Field(description="its path relative to the model directory, / separated")
    algorithm: str = Field(description="the digest's algorithm, e.g. sha256")
    digest: str = Field(description="the digest, hex")


class ProvenanceManifest(BaseModel):
    """The signed manifest: how the model was hashed, and every file's digest."""

    serialization: dict[str, Any] = Field(
        description="how model-signing serialized the model (method, hash_type, allow_symlinks, ignore_paths), "
        "as its predicate states it: what a verifier re-hashes the files with"
    )
    files: list[ManifestFile]


class Provenance(BaseModel):
    """A version's verified signature: who signed which files, checked when it was registered."""

    verified: bool = Field(description="true: a key the team trusted at registration verified the signature")
    signer: ProvenanceSigner
    algorithm: str = Field(description="the signature's algorithm, e.g. ecdsa-sha256-nistp256")
    manifest: ProvenanceManifest
    manifest_digest: str = Field(description="sha256:<hex> of the signed in-toto statement (the DSSE payload)")
    subject: str | None = Field(
        default=None,
        description="the signed statement's subject name (the model directory's name when it was signed); "
        "none for versions registered before it was recorded",
    )
    verified_at: UtcTime


class ModelVersionPublic(BaseModel):
    """A model version as clients see it; deployment fields default until a first report."""

    model_id: str
    team: str
    name: str
    version: str
    framework: str
    framework_version: str | None = None
    artifact_uri: str
    artifact_digest: str | None = None
    deployment_targets: list[str] = []
    description: str = ""
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    parameters: dict[str, str] = {}
    signature: dict[str, Any] | None = None
    lifecycle: str = "active"
    created_at: UtcTime
    updated_at: UtcTime
    created_by: str | None = None
    prerelease: bool = False
    status: str = Field("registered", description="the most advanced status across environments")
    environments: dict[str, EnvironmentStatus] = {}
    approval: Approval = Approval()
    aliases: list[str] = Field([], description="the model's aliases that point at this version")
    source: dict[str, Any] | None = Field(None, description="training run, experiment, code and datasets")
    parent: VersionParent | None = None
    provenance: Provenance | None = Field(
        None, description="the verified signature over the model's files (null: registered without one)"
    )

    @classmethod
    def of(cls, doc: Document) -> ModelVersionPublic:
        """The public view of a stored version document."""
        return cls.model_validate(stored_fields(cls, doc))


class ModelPublic(BaseModel):
    """A model with the headline fields of its latest version."""

    model_id: str
    team: str
    name: str
    latest_version: str | None = None
    version_count: int = 0
    framework: str | None = None
    deployment_targets: list[str] = []
    description: str = ""
    tags: dict[str, str] = {}
    owners: list[dict[str, Any]] = []
    documentation: str | None = None
    links: dict[str, str] = {}
    aliases: dict[str, str] = Field({}, description="alias → the version it points at")
    created_at: UtcTime | None = None
    updated_at: UtcTime | None = None

    @classmethod
    def of(cls, doc: Document) -> ModelPublic:
        """The public view of a stored model document."""
        fields = stored_fields(cls, doc)
        return cls.model_validate({**fields, "model_id": doc["_id"]})


class Page(BaseModel, Generic[Item]):
    """One page of a list; ``next_cursor`` (absent on the last page) continues it."""

    items: list[Item]
    next_cursor: str | None = None


def version_public(doc: Document) -> dict[str, Any]:
    """A version's public view as JSON-ready data (the data of ``model_version_registered``)."""
    return ModelVersionPublic.of(doc).model_dump(mode="json")


def model_public(doc: Document) -> dict[str, Any]:
    """A model's public view as JSON-ready data."""
    return ModelPublic.of(doc).model_dump(mode="json")


class ModelEventPublic(BaseModel):
    """One change of a model: an event of its history, oldest first."""

    event_id: str
    type: str
    time: UtcTime
    correlation_id: str | None = None
    causation_id: str | None = None
    data: dict[str, Any]

    @classmethod
    def of(cls, doc: Document) -> ModelEventPublic:
        """The public view of a stored event (an outbox row)."""
        return cls(
            event_id=doc["_id"],
            type=doc["type"],
            time=doc["time"],
            correlation_id=doc.get("correlation_id"),
            causation_id=doc.get("causation_id"),
            data=doc["data"],
        )


class DeploymentReportPublic(BaseModel):
    """One deployment report of a version as recorded, whether it moved the version or not."""

    id: str = Field(description="the report's CloudEvent id")
    outcome: str = Field(description="applied, out_of_order or rejected")
    reason: str | None = Field(None, description="the problem reason of a rejected report")
    message: str | None = None
    model_id: str | None = None
    team: str
    name: str
    version: str
    environment: str
    status: str
    previous_status: str | None = None
    skipped_deploying: bool = Field(
        False, description="applied as its environment's first report with an end state: no deploying was seen"
    )
    target: str | None = None
    pipeline: str | None = None
    run_id: str | None = None
    url: str | None = None
    occurred_at: UtcTime
    received_at: UtcTime
    correlation_id: str | None = None
    reporter: str | None = Field(None, description="the key id that sent the report")

    @classmethod
    def of(cls, doc: Document) -> DeploymentReportPublic:
        """The public view of a stored report (a row of ``deployments``)."""
        fields = stored_fields(cls, doc)
        return cls.model_validate({**fields, "id": doc.get("report_id", doc["_id"])})


class VersionDeployments(Page[DeploymentReportPublic]):
    """A page of a version's deployment reports, with where the version stands now."""

    status: str = Field("registered", description="the most advanced status across environments")
    environments: dict[str, EnvironmentStatus] = {}


class KeyRateLimit(BaseModel):
    """A key's own request limit (set by a platform admin), instead of the service default."""

    per_second: float
    burst: int


class ApiKeyPublic(BaseModel):
    """An API key as its team's admins see it: never its secret nor the secret's hash."""

    key_id: str
    team: str
    name: str | None = None
    scopes: list[str] = []
    revoked: bool = False
    created_at: UtcTime
    expires_at: UtcTime | None = None
    created_by: str | None = Field(None, description="the id of the key that created this one")
    rate_limit: KeyRateLimit | None = None

    @classmethod
    def of(cls, record: Document) -> ApiKeyPublic:
        """The public view of a stored key record (``api_keys``)."""
        fields = stored_fields(cls, record)
        return cls.model_validate({**fields, "key_id": record["_id"], "revoked": bool(record.get("revoked"))})


class ApiKeyCreated(ApiKeyPublic):
    """A key just created: the one response that carries its secret."""

    token: str = Field(description="the key itself; shown only in this response, store it now")


# --- Model cards (GET /v1/assistant/models/{team}/{name}/card) -------------------------------
# Only what the registry recorded: an empty field or list means "not recorded", never a guess.


class CardDetails(BaseModel):
    """Who owns the model, what it is built with, where its artifact is, and its versions."""

    model_id: str
    team: str
    name: str
    owners: list[str] = []
    framework: str | None = None
    framework_version: str | None = None
    artifact_uri: str | None = None
    artifact_digest: str | None = None
    registered_by: str | None = Field(None, description="the key id that registered the described version")
    signed_by: str | None = Field(
        None,
        description="the signing key whose signature over the described version's files registration verified: "
        "its name and fingerprint (null: registered without a signature)",
    )
    version_created_at: UtcTime | None = None
    version_updated_at: UtcTime | None = None
    model_created_at: UtcTime | None = None
    model_updated_at: UtcTime | None = None
    latest_version: str | None = Field(None, description="the model's headline version (stable before prerelease)")
    version_count: int = 0
    versions: list[str] = Field([], description="the versions the card read, newest SemVer precedence first")
    versions_truncated: bool = Field(False, description="true when the model has more versions than were read")


class CardIntendedUse(BaseModel):
    """What the model is for, in its team's words."""

    description: str = ""
    model_description: str | None = Field(None, description="the model's own description, when it differs")
    documentation: str | None = Field(None, description="the model's documentation (markdown, shown verbatim)")
    links: dict[str, str] = {}
    deployment_targets: list[str] = []
    signature: dict[str, Any] | None = None


class CardVersionMetrics(BaseModel):
    """One version read: its state, approval and aliases, its metrics and their change from the version before it."""

    version: str
    prerelease: bool = False
    lifecycle: str = "active"
    approval: str = Field("pending", description="the version's approval status: pending, approved or rejected")
    aliases: list[str] = Field([], description="the model's aliases that point at this version")
    created_at: UtcTime | None = None
    metrics: dict[str, float] = {}
    previous: str | None = Field(None, description="the version before this one among those read")
    changes: dict[str, float] = Field({}, description="this metric minus the previous version's, where both have it")


class CardDataset(BaseModel):
    """A dataset a version was trained or evaluated on, as recorded."""

    name: str | None = None
    uri: str | None = None
    digest: str | None = None


class CardLineage(BaseModel):
    """Where a version came from, as recorded at registration."""

    run_id: str | None = None
    run_url: str | None = None
    experiment: str | None = None
    code_repository: str | None = None
    code_commit: str | None = None
    parent: str | None = Field(None, description="team/name@version this one was derived from")
    datasets: list[CardDataset] = []


class CardTraining(BaseModel):
    """Training parameters and lineage of the described version."""

    parameters: dict[str, str] = {}
    lineage: CardLineage | None = None


class CardEnvironment(BaseModel):
    """Where a version stands in one environment, and the change that put it there."""

    environment: str
    version: str
    status: str
    previous_status: str | None = None
    changed_at: UtcTime | None = Field(None, description="when the last applied report says it happened")
    recorded_at: UtcTime | None = None
    target: str | None = None
    pipeline: str | None = None
    run_id: str | None = None
    url: str | None = None
    report_id: str | None = None


class CardDeployments(BaseModel):
    """Deployment status of the described version per environment, and other versions deployed."""

    status: str = "registered"
    environments: list[CardEnvironment] = []
    other_versions: list[CardEnvironment] = Field([], description="other versions read that are deployed or deploying")
    reports_read: int | None = Field(None, description="recent reports of the described version read; null: none read")
    failed_reports: int = 0


class CardLifecycle(BaseModel):
    """The described version's lifecycle state and the versions read in each state."""

    state: str = "active"
    versions_by_state: dict[str, list[str]] = {}


class ModelCard(BaseModel):
    """A model card (after "Model Cards for Model Reporting" and Hugging Face's), from the registry's records."""

    version: str | None = Field(None, description="the version the card describes")
    details: CardDetails
    intended_use: CardIntendedUse
    metrics: list[CardVersionMetrics] = []
    training: CardTraining
    deployments: CardDeployments
    lifecycle: CardLifecycle
    approval: Approval = Field(Approval(), description="the described version's approval: status, who, when, why")
    aliases: dict[str, str] = Field({}, description="the model's aliases: alias → the version it points at")
    tags: dict[str, str] = {}
    caveats: list[str] = Field(
        [], description="derived from the records: lifecycle, prereleases, a rejection, failed deployments"
    )
    not_recorded: list[str] = Field([], description="the card's fields with no recorded data")


class ModelCardPublic(BaseModel):
    """A model card as structured data and as markdown safe to render."""

    card: ModelCard
    markdown: str
