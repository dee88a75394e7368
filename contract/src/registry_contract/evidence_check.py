"""The offline check of an evidence bundle (:mod:`registry_contract.evidence`): pure, no I/O.

In order, the first failure is reported: every entry is the subject team's, in (chain, seq)
order, and its hash recomputes from its contents; the undisclosed entries' hashes link each
entry, seq by seq, to a signed point of its chain within :data:`SIGNED_EVERY` entries; every
signature (signed entries, anchors, the attestation) verifies with the caller's check; each
record's digest is its entry's id, no record is repeated, and the entries listed ``unrecorded``
are the bundle's own and have none; and the summary is what the records say. The attestation
covers which entries have records and the summary's digest: a record taken out fails it. Verifying Ed25519
needs a library this package does not depend on: the caller passes a check in
(``registry_client.audit_keys.signature_check``); without one, signatures are counted unchecked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from registry_contract.audit_chain import (
    BAD_ENTRY_SIGNATURE,
    BROKEN_LINK,
    EDITED,
    REPEATED_SEQ,
    SIGNED_EVERY,
    VERSION,
    SignatureCheck,
    entry_fields,
    link,
    must_be_signed,
    stored,
)
from registry_contract.envelope import EnvelopeError
from registry_contract.evidence import EvidenceAnchor, EvidenceBundle, attested, events_of, summarize

OUT_OF_ORDER = "not in (chain, seq) order (reordered or repeated)"
OTHER_TEAM = "entry of another team or model than the bundle's"
NOT_ATTESTED = "the bundle carries no attestation by the audit service"
BAD_ATTESTATION = "the attestation does not verify (bundle's proof changed, or not signed by the audit service)"
BAD_ANCHOR_SIGNATURE = "signed point's signature does not verify (forged or changed)"
RECORD_CHANGED = "record's digest is not its entry's id (event data changed)"
SUMMARY_CHANGED = "summary is not what the records say (summary edited)"
REPEATED_RECORD = "record repeated (one record per entry)"


class BundleProblem(BaseModel):
    """The first thing in a bundle that does not verify."""

    section: str = Field(description="``bundle``, ``entries``, ``links``, ``anchors``, ``records``, ``summary``, …")
    index: int | None = Field(None, description="position in that section's list")
    chain: str | None = None
    seq: int | None = None
    entry_id: str | None = None
    problem: str


class BundleCheck(BaseModel):
    """The verdict of :func:`verify_bundle`; ``first_broken`` is set only when not ``ok``."""

    ok: bool
    entries: int = 0
    records: int = 0
    links: int = 0
    anchors: int = 0
    signatures_checked: int = 0
    signatures_unchecked: int = Field(0, description="signatures not verified (no signature check given)")
    unrecorded: list[str] = Field(
        [], description="event entries whose record the audit service did not keep: their data is not shown"
    )
    truncated: bool = False
    first_broken: BundleProblem | None = None


class _Broken(Exception):
    def __init__(self, section: str, problem: str, **where: Any) -> None:
        super().__init__(problem)
        self.problem = BundleProblem(section=section, problem=problem, **where)


class _Signatures:
    def __init__(self, verify: SignatureCheck | None) -> None:
        self.verify, self.checked, self.unchecked = verify, 0, 0

    def ok(self, kind: str, fields: Mapping[str, Any], signature: Any) -> bool:
        if self.verify is None:
            self.unchecked += 1
            return True
        self.checked += 1
        return self.verify(kind, fields, signature)


def verify_bundle(bundle: EvidenceBundle | Mapping[str, Any], verify: SignatureCheck | None = None) -> BundleCheck:
    """Check an evidence bundle offline; ``verify`` checks the audit service's Ed25519 signatures."""
    try:
        model = bundle if isinstance(bundle, EvidenceBundle) else EvidenceBundle.model_validate(bundle)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        problem = BundleProblem(section="bundle", problem=f"not an evidence bundle: {where}: {error['msg']}")
        return BundleCheck(ok=False, first_broken=problem)
    signatures = _Signatures(verify)
    verdict = BundleCheck(
        ok=True,
        entries=len(model.entries),
        records=len(model.records),
        links=len(model.links),
        anchors=len(model.anchors),
        truncated=model.truncated,
        unrecorded=model.unrecorded,
    )
    try:
        _check_entries(model, signatures)
        _check_chains(model, signatures)
        _check_records(model)
        _check_attestation(model, signatures)
    except _Broken as broken:
        verdict.ok, verdict.first_broken = False, broken.problem
    verdict.signatures_checked, verdict.signatures_unchecked = signatures.checked, signatures.unchecked
    return verdict


def _check_entries(bundle: EvidenceBundle, signatures: _Signatures) -> None:
    previous: tuple[str, int] | None = None
    for index, entry in enumerate(bundle.entries):
        where = {"index": index, "chain": entry.chain, "seq": entry.seq, "entry_id": entry.id}
        if previous is not None and (entry.chain, entry.seq) <= previous:
            raise _Broken("entries", OUT_OF_ORDER, **where)
        previous = (entry.chain, entry.seq)
        if entry.team != bundle.team or entry.model not in (f"{bundle.team}/{bundle.name}", None):
            raise _Broken("entries", OTHER_TEAM, **where)
        if entry.v != VERSION:
            raise _Broken("entries", "legacy entry: its hash cannot be recomputed without the chain key", **where)
        if link(entry.prev_hash, stored(entry)) != entry.hash:
            raise _Broken("entries", EDITED, **where)
        if entry.sig is not None:
            if not signatures.ok("entry", entry_fields(entry.chain, entry.seq, entry.hash), entry.sig):
                raise _Broken("entries", BAD_ENTRY_SIGNATURE, **where)
        elif must_be_signed(entry.seq):
            raise _Broken("entries", BAD_ENTRY_SIGNATURE, **where)


def _check_chains(bundle: EvidenceBundle, signatures: _Signatures) -> None:
    """Each entry links, seq by seq through the hash-only links, to a signed point of its chain."""
    items: dict[str, dict[int, tuple[str, str, str | None]]] = defaultdict(dict)
    for entry in bundle.entries:
        items[entry.chain][entry.seq] = (entry.prev_hash, entry.hash, entry.id)
    previous: tuple[str, int] | None = None
    for index, item in enumerate(bundle.links):
        where = {"index": index, "chain": item.chain, "seq": item.seq}
        if previous is not None and (item.chain, item.seq) <= previous:
            raise _Broken("links", OUT_OF_ORDER, **where)
        previous = (item.chain, item.seq)
        if item.seq in items[item.chain]:
            raise _Broken("links", REPEATED_SEQ, **where)
        items[item.chain][item.seq] = (item.prev_hash, item.hash, None)
    anchors: dict[str, dict[int, EvidenceAnchor]] = defaultdict(dict)
    for index, anchor in enumerate(bundle.anchors):
        where = {"index": index, "chain": anchor.chain, "seq": anchor.seq}
        if anchor.seq in anchors[anchor.chain]:
            raise _Broken("anchors", REPEATED_SEQ, **where)
        if not _covers(anchor):
            raise _Broken("anchors", "signed point's fields do not name its chain, seq and hash", **where)
        if not signatures.ok(anchor.kind, anchor.fields, anchor.sig):
            raise _Broken("anchors", BAD_ANCHOR_SIGNATURE, **where)
        anchors[anchor.chain][anchor.seq] = anchor
    for entry in bundle.entries:
        _walk_to_anchor(entry.chain, entry.seq, items[entry.chain], anchors[entry.chain])


def _covers(anchor: EvidenceAnchor) -> bool:
    """Whether the signed fields state the anchor's own chain, seq and hash (an entry's: exactly those)."""
    named = entry_fields(anchor.chain, anchor.seq, anchor.hash)
    if anchor.kind == "entry":
        return anchor.fields == named
    return all(anchor.fields.get(key) == value for key, value in named.items())


def _walk_to_anchor(
    chain: str, seq: int, items: dict[int, tuple[str, str, str | None]], anchors: dict[int, EvidenceAnchor]
) -> None:
    at = seq
    while at not in anchors:
        at += 1
        if at - seq > SIGNED_EVERY:
            raise _Broken("links", "no signed point within 64 entries after the entry", chain=chain, seq=seq)
        if at not in items:
            raise _Broken("links", "entry missing between the entry and its signed point", chain=chain, seq=at)
        prev_hash, _, named = items[at]
        if prev_hash != items[at - 1][1]:
            raise _Broken("links", BROKEN_LINK, chain=chain, seq=at, entry_id=named)
    if anchors[at].hash != items[at][1]:
        raise _Broken("anchors", "signed point's hash is not the chain's hash there", chain=chain, seq=at)


def _check_records(bundle: EvidenceBundle) -> None:
    entries = {entry.id: entry for entry in bundle.entries}
    seen: set[str] = set()
    for index, record in enumerate(bundle.records):
        where = {"index": index, "entry_id": record.entry_id}
        entry = entries.get(record.entry_id)
        if entry is None:
            raise _Broken("records", "record of no entry in the bundle", **where)
        if record.entry_id in seen:
            raise _Broken("records", REPEATED_RECORD, **where)
        seen.add(record.entry_id)
        where |= {"chain": entry.chain, "seq": entry.seq}
        if (record.topic, record.partition, record.offset) != (entry.topic, entry.partition, entry.offset):
            raise _Broken("records", "record's topic, partition or offset is not its entry's", **where)
        try:
            digest = record.digest()
        except ValueError:
            raise _Broken("records", "record is not base64", **where) from None
        if digest != record.entry_id:
            raise _Broken("records", RECORD_CHANGED, **where)
    for index, entry_id in enumerate(bundle.unrecorded):
        if entry_id not in entries or entry_id in seen:
            problem = "listed without a record, but it has one" if entry_id in seen else "names no entry in the bundle"
            raise _Broken("unrecorded", problem, index=index, entry_id=entry_id)
    try:
        summary = summarize(events_of(bundle.records, bundle.entries), bundle.team, bundle.name, bundle.version)
    except (EnvelopeError, ValueError) as exc:
        raise _Broken("records", f"record does not decode: {exc}"[:300]) from None
    if summary.model_dump(mode="json") != bundle.summary.model_dump(mode="json"):
        raise _Broken("summary", SUMMARY_CHANGED)


def _check_attestation(bundle: EvidenceBundle, signatures: _Signatures) -> None:
    if bundle.attestation is None:
        raise _Broken("attestation", f"{NOT_ATTESTED}: {bundle.problem or 'none given'}")
    if not signatures.ok("evidence", attested(bundle), bundle.attestation):
        raise _Broken("attestation", BAD_ATTESTATION)
