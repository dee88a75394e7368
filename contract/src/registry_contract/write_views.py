"""What the registration service's curation writes answer: shares, aliases and the model's metadata.

Writes of versions answer :class:`registry_contract.views.ModelVersionPublic`; these are the others.
"""

from __future__ import annotations

from pydantic import BaseModel


class ShareChange(BaseModel):
    """A model shared with (or withdrawn from) another team."""

    model_id: str
    team: str
    name: str
    with_team: str


class AliasPublic(BaseModel):
    """An alias of a model and the version it points at."""

    alias: str
    version: str
    previous_version: str | None = None


class ModelUpdatedPublic(BaseModel):
    """What changed on the model."""

    model_id: str
    team: str
    name: str
    changes: dict[str, object]
