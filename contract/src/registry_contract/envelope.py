"""CloudEvents 1.0 over Kafka: binary-mode encoding, binary and structured decoding."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry_contract import correlation
from registry_contract.jsonbounds import depth_of
from registry_contract.record_signing import (
    KEYID_HEADER,
    SIGNATURE_HEADER,
    RecordProof,
    canonical_string,
    proof_flaw,
    signature_headers,
)
from registry_contract.times import utc_text

SPEC_VERSION = "1.0"
JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_DEPTH = 64  # deeper than any message of the contract; the JSON parser itself stops near 1,000
MAX_ATTRIBUTE = 512
MAX_PROOF = 128  # ce_keyid and ce_signature: an 8-character id, ``v1=`` and 64 hex digits
# ce_revision: the writer's outbox position (nanoseconds), decimal digits only; 20 holds any uint64.
_REVISION = re.compile(r"[0-9]{1,20}")
# Headers whose repetition would make a record mean two things (which ce_id? whose key?).
_SINGLE_HEADERS = frozenset({"content-type", "authorization"})

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A Kafka record that is not a valid CloudEvent; ``reason`` is a short machine code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CloudEvent(BaseModel):
    """One message of any topic: the CloudEvents context attributes plus JSON data."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=correlation.new_id)
    source: str
    type: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    correlation_id: str = Field(default_factory=lambda: correlation.current() or correlation.new_id())
    causation_id: str | None = None
    # A bearer credential as earlier producers sent it (refused unless KAFKA_ACCEPT_BEARER_KEYS).
    authorization: str | None = Field(default=None, repr=False)
    data: dict[str, Any] = Field(default_factory=dict)
    # Extension attribute ``revision``: the owner's revision of the model after this event (its
    # outbox position), set by the outbox relay of registration and the tracker; producers send none.
    revision: int | None = Field(default=None, ge=0)
    # Producer side: the API key :meth:`to_kafka` signs the record with (never sent itself).
    sign_with: str | None = Field(default=None, repr=False, exclude=True)
    # Consumer side: the key id and signature the record presented, with what they sign (unverified).
    proof: RecordProof | None = Field(default=None, repr=False, exclude=True)

    def to_kafka(self) -> tuple[bytes, Headers]:
        """Encode in binary mode: data as the value, attributes as ``ce_`` headers.

        With :attr:`sign_with`, the record carries ``ce_keyid`` and ``ce_signature``
        (:mod:`registry_contract.record_signing`) instead of the key.
        """
        time = utc_text(self.time)
        headers: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", time.encode()),
            ("content-type", JSON.encode()),
            ("ce_correlationid", self.correlation_id.encode()),
        ]
        if self.subject:
            headers.append(("ce_subject", self.subject.encode()))
        if self.causation_id:
            headers.append(("ce_causationid", self.causation_id.encode()))
        if self.revision is not None:
            headers.append(("ce_revision", str(self.revision).encode()))
        if self.authorization:
            headers.append(("authorization", self.authorization.encode()))
        value = json.dumps(self.data, separators=(",", ":"), default=str).encode()
        if self.sign_with:
            signed = {"id": self.id, "source": self.source, "type": self.type, "time": time}
            signed |= {"subject": self.subject} if self.subject else {}
            headers.extend(signature_headers(self.sign_with, attributes=signed, value=value))
        return value, headers

    def to_structured(self) -> dict[str, Any]:
        """The event as one CloudEvents JSON object (webhooks, structured mode)."""
        body: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": utc_text(self.time),
            "datacontenttype": JSON,
            "correlationid": self.correlation_id,
            "data": self.data,
        }
        if self.subject:
            body["subject"] = self.subject
        if self.causation_id:
            body["causationid"] = self.causation_id
        if self.revision is not None:
            body["revision"] = str(self.revision)
        return body


def decode(value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> CloudEvent:
    """Decode a Kafka record in binary or structured mode, or raise :class:`EnvelopeError`.

    Whatever the bytes, the only exception this raises is :class:`EnvelopeError`: a consumer
    dead-letters the record and moves on.
    """
    if value is None:
        raise EnvelopeError("empty", "record has no value")
    if len(value) > MAX_PAYLOAD_BYTES:
        raise EnvelopeError("too_large", f"payload is {len(value)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    header_map = _header_map(headers)
    content_type = header_map.get("content-type", "")
    body = _parse_json(value)
    # Nesting needs an opening bracket per level: a value with few (every event of the contract)
    # cannot be too deep, and is not walked; the walk was a tenth of the query's decoding.
    if value.count(b"{") + value.count(b"[") > MAX_DEPTH and depth_of(body, limit=MAX_DEPTH) > MAX_DEPTH:
        raise EnvelopeError("too_deep", f"value nests deeper than {MAX_DEPTH} levels")
    if content_type.startswith(STRUCTURED):
        if not isinstance(body, dict):
            raise EnvelopeError("malformed", "structured CloudEvent must be a JSON object")
        if any(key.lower() == "authorization" for key in body):
            # A credential inside the event would be stored and forwarded with it; it belongs in a header.
            raise EnvelopeError("malformed", "credentials go in the authorization header, not in the event")
        attributes = {key.lower(): val for key, val in body.items() if key != "data"}
        data = body.get("data")
    else:
        attributes = {key[3:]: val for key, val in header_map.items() if key.startswith("ce_")}
        data = body
    if "authorization" in header_map:
        attributes["authorization"] = header_map["authorization"]
    # In both modes the signature travels in Kafka headers: it covers the whole value.
    presented = (header_map.get(KEYID_HEADER), header_map.get(SIGNATURE_HEADER))
    return _build(attributes, data, value=value, presented=presented)


# How deep object keys are interned: the value (a structured event), its data, and the data's
# objects (tags, metrics, parameters, source).
INTERNED_LEVELS = 3
INTERNED_VALUE_LENGTH = 40  # short values repeat too: a team, a framework, a status, a tag's value


def _interned(value: Any, levels: int) -> Any:
    """``value`` with the keys of its objects, ``levels`` deep, and its short strings interned.

    The JSON decoder makes new key strings for every record, and a service that keeps events (the
    query's read model keeps each version's data and history row) would hold the same dozen names
    ("team", "version", "framework", each tag and metric name …) once per version: about a third
    of its memory. Interned, every record shares one copy of each.
    """
    if isinstance(value, str) and len(value) <= INTERNED_VALUE_LENGTH:
        return sys.intern(value)
    if levels <= 0 or not isinstance(value, dict):
        return value
    return {sys.intern(key): _interned(item, levels - 1) for key, item in value.items()}


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(value: bytes) -> Any:
    try:
        return _interned(json.loads(value, parse_constant=_reject_constant), INTERNED_LEVELS)
    except RecursionError:
        raise EnvelopeError("too_deep", "value nests too deeply to parse") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise EnvelopeError("not_json", f"value is not UTF-8 JSON: {exc}"[:300]) from None


def _header_map(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, raw in headers:
        name = key.lower()
        if name in result and (name.startswith("ce_") or name in _SINGLE_HEADERS):
            raise EnvelopeError("malformed", f"header {key[:40]!r} appears more than once")
        try:
            result[name] = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
        except UnicodeDecodeError:
            raise EnvelopeError("malformed", f"header {key[:40]!r} is not UTF-8") from None
    return result


def _attribute(attributes: Mapping[str, Any], name: str) -> str | None:
    """A context attribute as a bounded string without control characters, or ``None`` when absent."""
    value = attributes.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EnvelopeError("malformed", f"attribute {name!r} must be a string")
    if len(value) > MAX_ATTRIBUTE or any(ord(char) < 32 for char in value):
        raise EnvelopeError("malformed", f"attribute {name!r} is longer than {MAX_ATTRIBUTE} or has control characters")
    return value


def _revision(attributes: Mapping[str, Any]) -> int | None:
    """The ``revision`` extension attribute: decimal digits (at most 20), or ``None`` when absent."""
    value = attributes.get("revision")
    if value is None:
        return None
    if not isinstance(value, str) or not _REVISION.fullmatch(value):
        raise EnvelopeError("malformed", "attribute 'revision' must be 1 to 20 decimal digits")
    return int(value)


def _proof(
    found: Mapping[str, str | None], value: bytes, presented: tuple[str | None, str | None]
) -> RecordProof | None:
    """What a signed record presents, with the canonical string its signature must cover."""
    key_id, signed = presented
    if key_id is None and signed is None:
        return None
    if not key_id or not signed:
        raise EnvelopeError("malformed", f"{KEYID_HEADER} and {SIGNATURE_HEADER} go together")
    if len(key_id) > MAX_PROOF or len(signed) > MAX_PROOF:
        raise EnvelopeError("malformed", f"{KEYID_HEADER} or {SIGNATURE_HEADER} is longer than {MAX_PROOF}")
    canonical = canonical_string(
        key_id=key_id,
        event_id=found["id"] or "",
        source=found["source"] or "",
        event_type=found["type"] or "",
        time=found["time"] or "",
        subject=found["subject"],
        value=value,
    )
    return RecordProof(
        key_id=key_id,
        signature=signed,
        canonical=canonical,
        time_sent=bool(found["time"]),
        flaw=proof_flaw(key_id, signed),
    )


def _build(
    attributes: Mapping[str, Any],
    data: Any,
    *,
    value: bytes = b"",
    presented: tuple[str | None, str | None] = (None, None),
) -> CloudEvent:
    if attributes.get("specversion") != SPEC_VERSION:
        raise EnvelopeError("malformed", f"specversion must be {SPEC_VERSION!r}")
    found = {name: _attribute(attributes, name) for name in ("id", "source", "type", "subject", "time", "causationid")}
    missing = [name for name in ("id", "source", "type") if not found[name]]
    if missing:
        raise EnvelopeError("malformed", f"missing CloudEvent attributes: {', '.join(missing)}")
    if not isinstance(data, dict):
        raise EnvelopeError("malformed", "data must be a JSON object")
    time_value = found["time"]
    try:
        moment = datetime.fromisoformat(time_value.replace("Z", "+00:00")) if time_value else datetime.now(UTC)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # out-of-range offsets fail here, not later in a handler
    except (ValueError, OverflowError):
        raise EnvelopeError("malformed", f"time {(time_value or '')[:40]!r} is not RFC 3339") from None
    correlation_id = attributes.get("correlationid")
    authorization = attributes.get("authorization")
    proof = _proof(found, value, presented)
    revision = _revision(attributes)
    try:
        return CloudEvent(
            id=found["id"],
            source=found["source"],
            type=found["type"],
            time=moment,
            subject=found["subject"],
            # Like HTTP's X-Correlation-ID: an id that is not a short token is replaced, never logged.
            correlation_id=correlation_id if correlation.acceptable(correlation_id) else correlation.new_id(),
            causation_id=found["causationid"],
            authorization=authorization if isinstance(authorization, str) else None,
            data=data,
            revision=revision,
            proof=proof,
        )
    except ValidationError as exc:  # a last net: nothing but EnvelopeError leaves decode()
        raise EnvelopeError("malformed", f"not a CloudEvent: {exc.error_count()} invalid attributes") from None
