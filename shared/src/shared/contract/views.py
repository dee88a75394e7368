"""Public shapes of stored documents, shared by the write side (event data) and the read side.

These pydantic models are the HTTP responses (``response_model``, so ``/openapi.json`` documents
them) and the data of the events that carry a whole resource; times are written one way
(:data:`shared.contract.times.UtcTime`).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from shared.contract.documents import Document
from shared.contract.times import UtcTime

Item = TypeVar("Item")


class EnvironmentStatus(BaseModel):
    """Where a version stands in one environment (its latest accepted report)."""

    status: str
    occurred_at: UtcTime
    report_id: str
    target: str | None = None
    updated_at: UtcTime


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

    @classmethod
    def of(cls, doc: Document) -> ModelVersionPublic:
        """The public view of a stored version document."""
        return cls.model_validate({k: v for k, v in doc.items() if k in cls.model_fields and v is not None})


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
    created_at: UtcTime | None = None
    updated_at: UtcTime | None = None

    @classmethod
    def of(cls, doc: Document) -> ModelPublic:
        """The public view of a stored model document."""
        fields = {k: v for k, v in doc.items() if k in cls.model_fields and v is not None}
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
        fields = {k: v for k, v in doc.items() if k in cls.model_fields and v is not None}
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
        fields = {k: v for k, v in record.items() if k in cls.model_fields and v is not None}
        return cls.model_validate({**fields, "key_id": record["_id"], "revoked": bool(record.get("revoked"))})


class ApiKeyCreated(ApiKeyPublic):
    """A key just created: the one response that carries its secret."""

    token: str = Field(description="the key itself; shown only in this response, store it now")
