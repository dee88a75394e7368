"""Webhook subscriptions announced on ``registry.events``: created, re-keyed, deleted; never a secret."""

from __future__ import annotations

from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import WebhookChanged, url_origin

SOURCE = "/registry/deploy-tracker/webhooks"


def webhook_event(
    doc: Document, event_type: str, *, actor: Principal, previous_valid_seconds: int | None = None
) -> CloudEvent:
    """The event of ``event_type`` for the subscription ``doc``: where it points, what it gets, who acted."""
    data = WebhookChanged(
        team=doc["team"],
        actor=actor.key_id,
        actor_team=actor.team,
        webhook_id=doc["_id"],
        url=url_origin(doc["url"]),
        event_types=list(doc["event_types"]),
        active=bool(doc.get("active", True)),
        previous_valid_seconds=previous_valid_seconds,
    )
    return CloudEvent(source=SOURCE, type=event_type, data=data.model_dump(mode="json"))
