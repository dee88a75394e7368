"""CloudEvents 1.0 over Kafka: binary-mode encoding, binary and structured decoding."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared import correlation

SPEC_VERSION = "1.0"
JSON = "application/json"
STRUCTURED = "application/cloudevents+json"
MAX_PAYLOAD_BYTES = 256 * 1024

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
    authorization: str | None = Field(default=None, repr=False)
    data: dict[str, Any] = Field(default_factory=dict)

    def to_kafka(self) -> tuple[bytes, Headers]:
        """Encode in binary mode: data as the value, attributes as ``ce_`` headers."""
        headers: Headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", _rfc3339(self.time).encode()),
            ("content-type", JSON.encode()),
            ("ce_correlationid", self.correlation_id.encode()),
        ]
        if self.subject:
            headers.append(("ce_subject", self.subject.encode()))
        if self.causation_id:
            headers.append(("ce_causationid", self.causation_id.encode()))
        if self.authorization:
            headers.append(("authorization", self.authorization.encode()))
        return json.dumps(self.data, separators=(",", ":"), default=str).encode(), headers

    def to_structured(self) -> dict[str, Any]:
        """The event as one CloudEvents JSON object (webhooks, structured mode)."""
        body: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": _rfc3339(self.time),
            "datacontenttype": JSON,
            "correlationid": self.correlation_id,
            "data": self.data,
        }
        if self.subject:
            body["subject"] = self.subject
        if self.causation_id:
            body["causationid"] = self.causation_id
        return body


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decode(value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> CloudEvent:
    """Decode a Kafka record in binary or structured mode, or raise :class:`EnvelopeError`."""
    if value is None:
        raise EnvelopeError("empty", "record has no value")
    if len(value) > MAX_PAYLOAD_BYTES:
        raise EnvelopeError("too_large", f"payload is {len(value)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    header_map = _header_map(headers)
    content_type = header_map.get("content-type", "")
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("not_json", f"value is not UTF-8 JSON: {exc}") from None
    if content_type.startswith(STRUCTURED):
        if not isinstance(body, dict):
            raise EnvelopeError("malformed", "structured CloudEvent must be a JSON object")
        attributes = {key.lower(): val for key, val in body.items() if key != "data"}
        data = body.get("data")
    else:
        attributes = {key[3:]: val for key, val in header_map.items() if key.startswith("ce_")}
        data = body
    if "authorization" in header_map:
        attributes.setdefault("authorization", header_map["authorization"])
    return _build(attributes, data)


def _header_map(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, raw in headers:
        try:
            result[key.lower()] = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
        except UnicodeDecodeError:
            raise EnvelopeError("malformed", f"header {key!r} is not UTF-8") from None
    return result


def _build(attributes: Mapping[str, Any], data: Any) -> CloudEvent:
    if attributes.get("specversion") != SPEC_VERSION:
        raise EnvelopeError("malformed", f"specversion must be {SPEC_VERSION!r}")
    missing = [name for name in ("id", "source", "type") if not attributes.get(name)]
    if missing:
        raise EnvelopeError("malformed", f"missing CloudEvent attributes: {', '.join(missing)}")
    if not isinstance(data, dict):
        raise EnvelopeError("malformed", "data must be a JSON object")
    time_value = attributes.get("time")
    try:
        moment = datetime.fromisoformat(str(time_value).replace("Z", "+00:00")) if time_value else datetime.now(UTC)
    except ValueError:
        raise EnvelopeError("malformed", f"time {time_value!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return CloudEvent(
        id=str(attributes["id"]),
        source=str(attributes["source"]),
        type=str(attributes["type"]),
        time=moment,
        subject=attributes.get("subject"),
        correlation_id=str(attributes.get("correlationid") or correlation.new_id()),
        causation_id=attributes.get("causationid"),
        authorization=attributes.get("authorization"),
        data=data,
    )
