"""Evidence bundles: one version's history with the audit entries that prove it (no I/O).

A bundle (``GET /v1/audit/evidence/{team}/{name}/{version}``, ``registry audit evidence``) holds
the owning team's audit entries about one version, complete enough to recompute each one's hash;
the Kafka records of its events (each record's digest is its entry's id, which the entry's hash
covers, so the event data is as proven as the entry); a summary of what the events say (the
registration with its lineage and provenance, updates, approvals, lifecycle, alias moves,
deployments), which anyone recomputes from the records; and the chain proof. The chain proof
links each entry, through the entries after it given as hashes only (other teams' entries are
never disclosed), to the next point the audit service signed (an entry at a seq that is a
multiple of 64, or the chain's head), and the service's attestation signs the whole proof after
the service has checked the undisclosed entries' contents itself.
:func:`registry_contract.evidence_check.verify_bundle` checks a bundle offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from registry_contract import messages
from registry_contract.audit_views import AuditEntryPublic, AuditPublicKey
from registry_contract.envelope import CloudEvent, EnvelopeError, decode

FORMAT = "registry.evidence/1"
MAX_EVIDENCE_ENTRIES = 500  # entries a bundle holds at most; past it the bundle says it is truncated
DIGEST_LENGTH = 40  # hex digits of a record's digest kept as its entry's id

# What the summary gathers, by event type: the version's own events, and alias moves naming it.
_VERSION_EVENTS = {
    messages.MODEL_VERSION_UPDATED: "updates",
    messages.VERSION_APPROVAL_CHANGED: "approvals",
    messages.VERSION_LIFECYCLE_CHANGED: "lifecycle",
    messages.DEPLOYMENT_REPORT_RECORDED: "deployment_reports",
    messages.DEPLOYMENT_STATUS_CHANGED: "deployment_changes",
}
_ALIAS_EVENTS = (messages.ALIAS_SET, messages.ALIAS_REMOVED)


def record_digest(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, headers: Iterable[Any]
) -> str:
    """A Kafka record's identity: the digest of its position and everything it carried (an audit entry's id)."""
    digest = hashlib.sha256()
    for part in (topic.encode(), str(partition).encode(), str(offset).encode(), key or b"", value or b""):
        digest.update(len(part).to_bytes(8, "big") + part)
    for name, raw in headers or ():
        for part in (str(name).encode(), bytes(raw)):
            digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:DIGEST_LENGTH]


class EvidenceRecord(BaseModel):
    """The Kafka record of an event entry, as consumed: its digest must be the entry's id."""

    entry_id: str
    topic: str
    partition: int
    offset: int
    key: str | None = Field(None, description="the record's key, base64 (null: none)")
    value: str | None = Field(None, description="the record's value, base64 (the event's data, binary mode)")
    headers: list[tuple[str, str]] = Field([], description="``[name, value base64]`` in the record's order")

    def raw(self) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
        """Key, value and headers as bytes."""
        key = base64.b64decode(self.key, validate=True) if self.key is not None else None
        value = base64.b64decode(self.value, validate=True) if self.value is not None else None
        return key, value, [(name, base64.b64decode(raw, validate=True)) for name, raw in self.headers]

    def digest(self) -> str:
        """The digest of this record (what its entry's id must be)."""
        key, value, headers = self.raw()
        return record_digest(self.topic, self.partition, self.offset, key, value, headers)

    def event(self) -> CloudEvent:
        """The CloudEvent the record carries; raises :class:`EnvelopeError` or ``ValueError``."""
        _, value, headers = self.raw()
        return decode(value, headers)

    @classmethod
    def of(cls, entry_id: str, topic: str, partition: int, offset: int, stored: Mapping[str, Any]) -> EvidenceRecord:
        """The record of ``entry_id`` from what the audit service keeps of it (``key``, ``value``, ``headers``)."""

        def text(raw: Any) -> str | None:
            return base64.b64encode(bytes(raw)).decode() if raw is not None else None

        headers = [(str(name), text(raw) or "") for name, raw in stored.get("headers") or ()]
        return cls(
            entry_id=entry_id,
            topic=topic,
            partition=partition,
            offset=offset,
            key=text(stored.get("key")),
            value=text(stored.get("value")),
            headers=headers,
        )


class EvidenceLink(BaseModel):
    """An entry between a disclosed one and the next signed point, shown by its hashes only."""

    chain: str
    seq: int
    prev_hash: str
    hash: str


class EvidenceAnchor(BaseModel):
    """A point of a chain the audit service signed: a signed entry's ``(chain, seq, hash)`` or a head."""

    chain: str
    seq: int
    hash: str
    kind: Literal["entry", "head"]
    fields: dict[str, Any] = Field(description="what the signature covers (with ``kind``, as sorted compact JSON)")
    sig: dict[str, str] = Field(description="``kid`` and ``sig`` (hex), the audit service's Ed25519 signature")


class EvidenceEvent(BaseModel):
    """One event of the version, as its record says."""

    entry_id: str
    type: str
    time: str = Field(description="the event's own time")
    data: dict[str, Any]


class EvidenceSummary(BaseModel):
    """What the bundle's events say about the version; recomputed from the records when verifying."""

    registration: EvidenceEvent | None = Field(None, description="the registered event: fields, lineage, provenance")
    lineage: dict[str, Any] = Field({}, description="``source`` and ``parent`` of the registration")
    provenance: dict[str, Any] | None = Field(None, description="the registration's provenance, if it had one")
    updates: list[EvidenceEvent] = []
    approvals: list[EvidenceEvent] = []
    approval: str | None = Field(None, description="the approval status after the last approval event")
    lifecycle: list[EvidenceEvent] = []
    aliases: list[EvidenceEvent] = Field([], description="alias moves to or away from the version")
    deployment_reports: list[EvidenceEvent] = []
    deployment_changes: list[EvidenceEvent] = []
    deployments: dict[str, dict[str, Any]] = Field(
        {}, description="each environment's status after the last status change in the bundle"
    )
    deleted: EvidenceEvent | None = None


class EvidenceBundle(BaseModel):
    """The answer of ``GET /v1/audit/evidence/{team}/{name}/{version}``: a version's evidence, checkable offline."""

    format: Literal["registry.evidence/1"] = "registry.evidence/1"
    team: str
    name: str
    version: str
    exported_at: str = Field(description="when the audit service made the bundle (RFC 3339)")
    limit: int = Field(description="entries a bundle holds at most")
    truncated: bool = Field(description="true: more entries concern the version than the bundle holds")
    omitted: int = Field(0, description="entries about the version left out (truncation, or legacy entries)")
    summary: EvidenceSummary
    entries: list[AuditEntryPublic] = Field(description="the team's entries about the version, by chain and seq")
    records: list[EvidenceRecord] = Field(description="the Kafka records of the event entries the service kept")
    unrecorded: list[str] = Field(
        [],
        description="ids of the event entries whose record the service did not keep (sorted); the attestation "
        "covers them with the records' ids, so a record removed from the bundle does not verify",
    )
    links: list[EvidenceLink] = Field(description="undisclosed entries between each entry and its signed point")
    anchors: list[EvidenceAnchor] = Field(description="the signed points the entries link to")
    public_keys: list[AuditPublicKey] = Field(
        [], description="the service's keys, for reference: verify with keys obtained independently"
    )
    attestation: dict[str, str] | None = Field(
        None,
        description="the audit service's Ed25519 signature over :func:`attested` (null: it found the chain broken)",
    )
    problem: str | None = Field(None, description="why the service did not attest the bundle")


def attested(bundle: EvidenceBundle) -> dict[str, Any]:
    """What the attestation signs (kind ``evidence``): the subject and the digests of the proof and summary.

    The proof digest covers every entry, link and anchor; ``records`` and ``unrecorded`` name which
    entries have records and which have none, so a record taken out fails the attestation.
    """
    proof = {
        "entries": [[e.chain, e.seq, e.hash] for e in bundle.entries],
        "links": [[link.chain, link.seq, link.prev_hash, link.hash] for link in bundle.links],
        "anchors": [[a.chain, a.seq, a.hash, a.kind] for a in bundle.anchors],
    }
    return {
        "team": bundle.team,
        "name": bundle.name,
        "version": bundle.version,
        "exported_at": bundle.exported_at,
        "truncated": bundle.truncated,
        "omitted": bundle.omitted,
        "proof": _digest(proof),
        "records": sorted(record.entry_id for record in bundle.records),
        "unrecorded": sorted(bundle.unrecorded),
        "summary": _digest(bundle.summary.model_dump(mode="json")),
    }


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def summarize(events: Iterable[tuple[str, CloudEvent]], team: str, name: str, version: str) -> EvidenceSummary:
    """The summary of a version from its events (``(entry_id, event)`` in the order they were received)."""
    summary = EvidenceSummary()
    for entry_id, event in events:
        data = dict(event.data)
        if (data.get("team"), data.get("name")) != (team, name):
            continue
        item = EvidenceEvent(entry_id=entry_id, type=event.type, time=event.time.isoformat(), data=data)
        if event.type in _ALIAS_EVENTS:
            if version in (data.get("version"), data.get("previous_version")):
                summary.aliases.append(item)
            continue
        if data.get("version") != version:
            continue
        if event.type == messages.MODEL_VERSION_REGISTERED and summary.registration is None:
            summary.registration = item
            summary.lineage = {key: data.get(key) for key in ("source", "parent")}
            provenance = data.get("provenance")
            summary.provenance = provenance if isinstance(provenance, dict) else None
        elif event.type == messages.MODEL_VERSION_DELETED:
            summary.deleted = item
        elif event.type in _VERSION_EVENTS:
            getattr(summary, _VERSION_EVENTS[event.type]).append(item)
            if event.type == messages.VERSION_APPROVAL_CHANGED:
                summary.approval = str(data.get("to"))
            elif event.type == messages.DEPLOYMENT_STATUS_CHANGED:
                environment = str(data.get("environment"))
                summary.deployments[environment] = {
                    "status": data.get("status"),
                    "overall_status": data.get("overall_status"),
                    "report_id": data.get("report_id"),
                    "changed_at": item.time,
                }
    return summary


def events_of(records: Iterable[EvidenceRecord], entries: Iterable[AuditEntryPublic]) -> list[tuple[str, CloudEvent]]:
    """The events of ``records`` in the order the audit service received them; a record that does not decode raises.

    Received in one batch, entries share a time: their chain and seq order them then.
    """
    order = sorted(entries, key=lambda e: (e.received_at, e.chain, e.seq))
    place = {entry.id: index for index, entry in enumerate(order)}
    ordered = sorted(records, key=lambda record: place.get(record.entry_id, len(place)))
    return [(record.entry_id, record.event()) for record in ordered]


__all__ = [
    "DIGEST_LENGTH",
    "FORMAT",
    "MAX_EVIDENCE_ENTRIES",
    "EnvelopeError",
    "EvidenceAnchor",
    "EvidenceBundle",
    "EvidenceEvent",
    "EvidenceLink",
    "EvidenceRecord",
    "EvidenceSummary",
    "attested",
    "events_of",
    "record_digest",
    "summarize",
]
