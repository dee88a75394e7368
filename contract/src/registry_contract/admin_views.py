"""What a team's admin routes answer: its API keys, webhook subscriptions (their secret only once) and deliveries.

A single key is :class:`registry_contract.views.ApiKeyPublic` (``ApiKeyCreated`` when just made).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from registry_contract.documents import Document
from registry_contract.times import UtcTime
from registry_contract.views import ApiKeyPublic, stored_fields


class ApiKeyList(BaseModel):
    """A team's keys, oldest first (a team holds a bounded number: no pagination)."""

    items: list[ApiKeyPublic]


class WebhookPublic(BaseModel):
    """A subscription as its team's admins see it: never its secrets."""

    id: str
    team: str
    url: str
    event_types: list[str]
    active: bool
    description: str = ""
    created_at: UtcTime
    previous_secret_expires_at: UtcTime | None = Field(
        None, description="until when the rotated-out secret still signs deliveries, beside the current one"
    )

    @classmethod
    def of(cls, doc: Document) -> WebhookPublic:
        """The public view of a stored subscription (``webhooks``)."""
        return cls(
            id=doc["_id"],
            team=doc["team"],
            url=doc["url"],
            event_types=doc["event_types"],
            active=doc["active"],
            description=doc.get("description", ""),
            created_at=doc["created_at"],
            previous_secret_expires_at=doc.get("previous_secret_expires_at"),
        )


class WebhookCreated(WebhookPublic):
    """A subscription just created or re-keyed: the one response that carries its secret."""

    secret: str = Field(description="signs every delivery (Standard Webhooks); shown only here, store it now")

    @classmethod
    def of(cls, doc: Document) -> WebhookCreated:
        """The view of a stored subscription, with its current secret."""
        return cls(**WebhookPublic.of(doc).model_dump(), secret=doc["secret"])


class WebhookList(BaseModel):
    """A team's subscriptions."""

    items: list[WebhookPublic]


class DeliveryError(BaseModel):
    """One failed attempt, as a coarse category (``timeout``, ``http_5xx``…), never the raw error."""

    at: UtcTime
    error: str


class WebhookDeliveryPublic(BaseModel):
    """One event sent (or being sent) to one subscription; ``dead`` ones are dead-lettered."""

    id: str
    event_id: str | None = None
    event_type: str | None = None
    status: str = Field(description="pending, delivered or dead")
    attempts: int
    next_attempt_at: UtcTime | None = None
    delivered_at: UtcTime | None = None
    dead_at: UtcTime | None = None
    errors: list[DeliveryError] = []

    @classmethod
    def of(cls, doc: Document) -> WebhookDeliveryPublic:
        """The public view of a stored delivery (``webhook_deliveries``, without its body)."""
        fields = stored_fields(cls, doc)
        return cls.model_validate({**fields, "id": doc["_id"]})


class WebhookDeliveryList(BaseModel):
    """A subscription's recent deliveries, newest first."""

    items: list[WebhookDeliveryPublic]
