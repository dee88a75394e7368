"""Webhook fan-out policy: which subscriptions are sent which events, as pending deliveries (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import IDENTITY_EVENT_MODELS


def teams_of(events: Iterable[CloudEvent]) -> list[str]:
    """The teams the events are about (sorted): only their subscriptions can want them."""
    return sorted({team for event in events if isinstance(team := event.data.get("team"), str)})


def wants(subscription: Document, event: CloudEvent) -> bool:
    """Whether ``subscription`` gets ``event``: active, of the event's team, subscribed to its type (or ``*``).

    Key and webhook changes are for the audit log only: they leave the registry through no webhook.
    """
    types = subscription["event_types"]
    return (
        event.type not in IDENTITY_EVENT_MODELS
        and subscription.get("active") is True
        and subscription["team"] == event.data.get("team")
        and (event.type in types or "*" in types)
    )


def deliveries(events: Sequence[CloudEvent], subscriptions: Sequence[Document], now: datetime) -> list[Document]:
    """A pending delivery for each event and each subscription that wants it, idempotent on (event, subscription)."""
    return [_pending(event, sub, now) for event in events for sub in subscriptions if wants(sub, event)]


def _pending(event: CloudEvent, subscription: Document, now: datetime) -> Document:
    return {
        "_id": f"{event.id}:{subscription['_id']}",
        "webhook_id": subscription["_id"],
        "team": subscription["team"],
        "event_id": event.id,
        "event_type": event.type,
        "body": json.dumps(event.to_structured(), separators=(",", ":")),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": now,
        "created_at": now,
        "errors": [],
    }
