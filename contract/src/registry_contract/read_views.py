"""What the query service's smaller reads answer: a model's aliases and shares, a version's lineage, ``/v1/meta``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from registry_contract import catalog
from registry_contract.views import ModelVersionPublic


class AliasesPublic(BaseModel):
    """Every alias of a model and the version it points at."""

    items: list[dict[str, str]] = Field(description='[{"alias": …, "version": …}], by alias')


class SharesPublic(BaseModel):
    """The teams a model is shared with (besides its own)."""

    items: list[dict[str, str]] = Field(description='[{"team": …}], by team')


class LineagePublic(BaseModel):
    """A version, the chain of versions it derives from, and the versions derived from it."""

    version: ModelVersionPublic
    parents: list[ModelVersionPublic] = Field(description="nearest first")
    parents_truncated: bool = Field(
        description=f"the walk stopped at a parent you may not read, one deleted, or after {catalog.MAX_LINEAGE_DEPTH}"
    )
    children: list[ModelVersionPublic] = Field(
        description=f"newest first, at most {catalog.MAX_LINEAGE_CHILDREN}, readable only"
    )


class Limits(BaseModel):
    """Sizes the API enforces."""

    max_payload_bytes: int
    max_page_size: int
    default_page_size: int
    max_tags: int


class Meta(BaseModel):
    """Enumerations and limits of the contract."""

    service_version: str
    frameworks: list[str]
    deployment_targets: list[str]
    lifecycle_states: list[str]
    deployment_statuses: list[str]
    slug_pattern: str
    semver: str
    limits: Limits
    model_sorts: list[str]
