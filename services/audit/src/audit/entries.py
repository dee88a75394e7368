"""Turning any record of any topic into an audit entry (no I/O).

What an entry asserts about who acted and for which team comes only from what the record
proves (:mod:`shared.chassis.identity`): its API key, or a service's signature. A record that proves
nothing is still audited, with ``team``/``actor`` empty and what it said kept under ``claims``,
so no producer can write entries into another team's log or in another key's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit.chain import VERSION
from registry_contract import messages
from registry_contract.auth import Principal, bearer_token, parse_api_key
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.evidence import record_digest
from registry_contract.identity_events import IDENTITY_EVENT_MODELS
from registry_contract.sortkeys import time_key
from registry_contract.times import to_stored_precision

_ACCESS_OUTCOMES = {
    messages.ACCESS_READ: "read",
    messages.ACCESS_WRITE: "write",
    messages.ACCESS_DENIED: "denied",
    messages.ACCESS_AUTH_FAILED: "auth_failed",
    messages.ACCESS_RATE_LIMITED: "rate_limited",
}


@dataclass(frozen=True)
class Source:
    """Where a record came from, and its identity: a digest of everything it carried.

    Offsets are positions, not identities: a broker whose log restarts hands out offset 0
    again. The digest of position and content tells a redelivered record (same bytes at the
    same position) from a new one, whatever happened to the broker meanwhile.
    """

    topic: str
    partition: int
    offset: int
    digest: str

    @classmethod
    def of(
        cls, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, headers: Any
    ) -> Source:
        """The source of a consumed record."""
        return cls(topic, partition, offset, record_digest(topic, partition, offset, key, value, headers))


def received_now() -> datetime:
    """Now, at the millisecond precision MongoDB keeps (what is hashed is what is stored)."""
    return to_stored_precision(datetime.now(UTC))


def entry_for(
    source: Source,
    *,
    event: CloudEvent | None,
    error: str | None,
    received_at: datetime,
    principal: Principal | None = None,
    signed: bool = False,
) -> Document:
    """The audit entry of one record; undecodable records are audited too."""
    entry: Document = {
        "_id": source.digest,
        "v": VERSION,
        "chain": f"{source.topic}:{source.partition}",
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "received_at": received_at,
        "ts_key": time_key(received_at, source.digest),
    }
    if event is None:
        return (
            entry
            | dict.fromkeys(
                ("ce_id", "source", "time", "verified", "actor", "actor_team", "team", "model", "claims"),
            )
            | {
                "type": "undecodable",
                "outcome": "dead_lettered",
                "detail": (error or "")[:500],
                "correlation_id": None,
                "causation_id": None,
            }
        )
    return entry | {
        "ce_id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time.isoformat(),
        **_attribution(event, principal, signed),
        "outcome": _outcome(event),
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "detail": _detail(event),
    }


RECORD = "record"  # the key under which an entry carries its record to the store (never chained or stored with it)


def with_record(entry: Document, key: bytes | None, value: bytes | None, headers: Any) -> Document:
    """``entry`` carrying its record, if it is kept: a service's own model event (evidence bundles show its data).

    Only records a service signed, naming a model, and carrying no credential are kept: what a
    bundle discloses is what the service published, never a producer's bearer key.
    """
    if entry.get("verified") != "service" or not entry.get("model"):
        return entry
    listed = [(str(name), bytes(raw)) for name, raw in headers or ()]
    if any(name.lower() == "authorization" for name, _ in listed):
        return entry
    return entry | {RECORD: {"key": key, "value": value, "headers": listed}}


def _attribution(event: CloudEvent, principal: Principal | None, signed: bool) -> Document:
    """``verified``, ``actor``, ``actor_team``, ``team``, ``model`` and ``claims`` of an entry."""
    data = event.data
    team, name = _text(data.get("team")), _text(data.get("name"))
    model = f"{team}/{name}" if team and name else None
    if principal is not None:  # a valid key, or a service acting for one
        acts = team is not None and principal.acts_for(team)
        return {
            "verified": "key",
            "actor": principal.key_id,
            "actor_team": principal.team,
            "team": team if acts else principal.team,
            "model": model if acts else None,
            "claims": None if acts or team is None else {"team": team, "model": model},
        }
    if signed:  # a service's own event: it states the team and the key that acted
        actor = _text(data.get("principal")) or _text(data.get("created_by"))
        actor_team = None
        if event.type in IDENTITY_EVENT_MODELS:  # keys and webhooks name their actor and its team
            actor, actor_team = _text(data.get("actor")), _text(data.get("actor_team"))
        return {
            "verified": "service",
            "actor": actor,
            "actor_team": actor_team,
            "team": team,
            "model": model,
            "claims": None,
        }
    # The key id an unproven record names (a signature that does not verify, a refused bearer key).
    # Only a key id in its format is kept: ce_keyid is whatever the sender wrote.
    claimed_actor = None
    if event.proof is not None:
        claimed_actor = event.proof.key_id if event.proof.flaw is None else "malformed-key"
    if claimed_actor is None and event.authorization:
        parsed = parse_api_key(bearer_token(event.authorization) or "")
        claimed_actor = parsed[0] if parsed else "malformed-key"
    claims = {"actor": claimed_actor or _text(data.get("principal")), "team": team, "model": model}
    return {
        "verified": None,
        "actor": None,
        "actor_team": None,
        "team": None,
        "model": None,
        "claims": {k: v for k, v in claims.items() if v} or None,
    }


def _outcome(event: CloudEvent) -> str:
    if event.type in _ACCESS_OUTCOMES:
        return _ACCESS_OUTCOMES[event.type]
    if event.type == messages.COMMAND_REJECTED:
        return f"rejected:{_text(event.data.get('reason'))}"
    return "ok"


def _detail(event: CloudEvent) -> str | None:
    data = event.data
    if event.type in _ACCESS_OUTCOMES:
        request = f"{_text(data.get('method'))} {(_text(data.get('path')) or '')[:200]} {data.get('status')}"
        # Why an authentication failed ("token expired", "invalid"): what an operator looks for first.
        why = _text(data.get("reason")) if event.type == messages.ACCESS_AUTH_FAILED else None
        return (request + (f" ({why[:64]})" if why else "") + _token_detail(data))[:500]
    if event.type == messages.COMMAND_REJECTED:
        return (_text(data.get("message")) or "")[:500] or None
    if event.type in IDENTITY_EVENT_MODELS:
        return _identity_detail(data)
    version = _text(data.get("version"))
    return f"version {version[:256]}" if version else None


def _token_detail(data: dict[str, Any]) -> str:
    """Who a token's caller is, for an access entry: issuer, subject, the rule and the claims it matched."""
    identity = data.get("identity")
    if not isinstance(identity, dict):
        return ""
    matched = _claims_text(identity.get("claims"))
    issuer, subject, rule = ((_text(identity.get(k)) or "")[:128] for k in ("issuer", "subject", "rule"))
    # The rule first: however long the subject, the entry names what admitted the caller.
    return f" by token rule={rule} iss={issuer} sub={subject} matched [{matched}]"


def _claims_text(claims: Any) -> str:
    """``name=value`` pairs of a token's or a rule's claims, space-separated (nothing if they are not a map)."""
    return " ".join(f"{k}={_text(v)}" for k, v in claims.items()) if isinstance(claims, dict) else ""


def _identity_detail(data: dict[str, Any]) -> str:
    """What changed, in a line: the key and its scopes, the signing key, or the webhook and where it points."""
    if "fingerprint" in data:  # a signing key: whose signatures the team trusts
        key_id, name = _text(data.get("key_id")), _text(data.get("name")) or ""
        algorithm, fingerprint = _text(data.get("algorithm")), _text(data.get("fingerprint"))
        return f"signing key {key_id} ({name}) {algorithm} {fingerprint}"[:500]
    if "key_id" in data:
        scopes = data.get("scopes")
        listed = ",".join(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ""
        return f"key {_text(data.get('key_id'))} ({_text(data.get('key_name')) or ''}) scopes {listed}"[:500]
    if "rule_id" in data:
        matched = _claims_text(data.get("claims"))
        scopes = data.get("scopes")
        listed = ",".join(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else ""
        return f"trust rule {_text(data.get('rule_id'))} iss={_text(data.get('issuer'))} [{matched}] scopes {listed}"[
            :500
        ]
    return f"webhook {_text(data.get('webhook_id'))} -> {_text(data.get('url'))}"[:500]


def _text(value: Any) -> str | None:
    return value[:512] if isinstance(value, str) else None
