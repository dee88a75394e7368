"""Turning any record of any topic into an audit entry (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared import messages
from shared.auth import bearer_token, parse_api_key
from shared.envelope import CloudEvent
from shared.mongo import Document
from shared.sortkeys import time_key

_ACCESS_OUTCOMES = {
    messages.ACCESS_READ: "read",
    messages.ACCESS_DENIED: "denied",
    messages.ACCESS_AUTH_FAILED: "auth_failed",
    messages.ACCESS_RATE_LIMITED: "rate_limited",
}


def entry_for(
    *, topic: str, partition: int, offset: int, event: CloudEvent | None, error: str | None, received_at: datetime
) -> Document:
    """The audit entry of one record; undecodable records are audited too."""
    entry_id = f"{topic}:{partition}:{offset}"
    entry: Document = {
        "_id": entry_id,
        "chain": f"{topic}:{partition}",
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "received_at": received_at,
        "ts_key": time_key(received_at, entry_id),
    }
    if event is None:
        return entry | {
            "type": "undecodable",
            "outcome": "dead_lettered",
            "detail": (error or "")[:500],
            "ce_id": None,
            "source": None,
            "time": None,
            "actor": None,
            "team": None,
            "model": None,
            "correlation_id": None,
            "causation_id": None,
        }
    data = event.data
    team, name = _text(data.get("team")), _text(data.get("name"))
    return entry | {
        "ce_id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time.isoformat(),
        "actor": _actor(event),
        "team": team,
        "model": f"{team}/{name}" if team and name else None,
        "outcome": _outcome(event),
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "detail": _detail(event),
    }


def _actor(event: CloudEvent) -> str | None:
    """The key id that acted (never the secret): from the command's credential or the event."""
    token = bearer_token(event.authorization)
    if token:
        parsed = parse_api_key(token)
        return parsed[0] if parsed else "malformed-key"
    return _text(event.data.get("principal")) or _text(event.data.get("created_by"))


def _outcome(event: CloudEvent) -> str:
    if event.type in _ACCESS_OUTCOMES:
        return _ACCESS_OUTCOMES[event.type]
    if event.type == messages.COMMAND_REJECTED:
        return f"rejected:{event.data.get('reason')}"
    return "ok"


def _detail(event: CloudEvent) -> str | None:
    data = event.data
    if event.type in _ACCESS_OUTCOMES:
        return f"{data.get('method')} {data.get('path')} {data.get('status')}"[:500]
    if event.type == messages.COMMAND_REJECTED:
        return _text(data.get("message"))
    version = _text(data.get("version"))
    return f"version {version}" if version else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
