"""The audit chain's hashing and its offline check: what anyone holding entries can recompute.

Each entry (``v`` 4) stores ``hash = SHA-256(prev_hash + canonical(entry))`` and a ``seq`` dense
per chain (one chain per source topic-partition); every entry whose seq is a multiple of
:data:`SIGNED_EVERY` also carries the audit service's Ed25519 signature over
:func:`entry_fields` (:func:`signed_message` is what it signs). The audit service writes with
these functions and :func:`check_entries` checks with them, so there is one definition of a
valid chain. Verifying a signature needs an Ed25519 library, which this package does not
depend on: the caller passes a verifying callable in.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from registry_contract.audit_views import AuditEntryPublic, BrokenLink

GENESIS = "0" * 64
SIGNED_EVERY = 64  # every entry at a multiple of this seq carries the service's signature
VERSION = 4
LEGACY_VERSIONS = (None, 2, 3)
V2_FIELDS = (
    "_id",
    "v",
    "chain",
    "seq",
    "topic",
    "partition",
    "offset",
    "received_at",
    "ts_key",
    "ce_id",
    "type",
    "source",
    "time",
    "verified",
    "actor",
    "actor_team",
    "team",
    "model",
    "claims",
    "outcome",
    "correlation_id",
    "causation_id",
    "detail",
)
CHAINED_FIELDS = (*V2_FIELDS, "expires_at", "prev_expires_at", "prev_expiring_from")
LEGACY_FIELDS = (
    "_id",
    "chain",
    "seq",
    "topic",
    "partition",
    "offset",
    "ce_id",
    "type",
    "source",
    "time",
    "actor",
    "team",
    "model",
    "outcome",
    "correlation_id",
    "causation_id",
    "detail",
)
EDITED = "hash does not match (entry edited)"
BAD_ENTRY_SIGNATURE = "entry's signature is missing or does not verify (entry edited, or the chain rewritten)"
BROKEN_LINK = "prev_hash is not the previous entry's hash (entry inserted, removed or reordered)"
REPEATED_SEQ = "two entries at one seq"

# Whether a signature (``{"kid", "sig"}`` as stored) is by a trusted key over ``signed_message(kind, fields)``.
SignatureCheck = Callable[[str, Mapping[str, Any], Any], bool]


def plain(value: Any) -> Any:
    """A non-JSON value as hashed: datetimes as MongoDB stores them (UTC, milliseconds), the rest as text."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="milliseconds")
    return str(value)


def canonical(entry: Mapping[str, Any], fields: tuple[str, ...] = CHAINED_FIELDS) -> bytes:
    """The bytes an entry's hash covers: its chained fields as sorted, compact JSON."""
    body = {name: entry.get(name) for name in fields}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=plain).encode()


def link(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The hash of a ``v`` 4 entry following ``prev_hash``: plain SHA-256, anyone can recompute it."""
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


def entry_fields(chain: str, seq: int, hash_: Any) -> dict[str, Any]:
    """What an entry's signature (or a checkpoint's) covers: its hash covers the rest."""
    return {"chain": chain, "seq": seq, "hash": hash_}


def signed_message(kind: str, fields: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the kind (head, entry, checkpoint) and fields, as sorted compact JSON."""
    return json.dumps({"kind": kind, **fields}, sort_keys=True, separators=(",", ":"), default=str).encode()


def must_be_signed(seq: int) -> bool:
    """Whether the entry at ``seq`` carries the service's signature: a signed point inside the chain."""
    return seq % SIGNED_EVERY == 0


class ChainCheck(BaseModel):
    """The verdict of :func:`check_entries`; ``first_broken`` is set only when not ``ok``."""

    ok: bool
    entries: int = Field(description="entries read")
    chains: int = Field(description="chains they belong to")
    signatures_checked: int = Field(description="entry signatures verified with the given public keys")
    signatures_unchecked: int = Field(description="signed entries whose signature was not verified (no verifier)")
    legacy_unchecked: int = Field(description="entries written before signed chains: only their links were checked")
    first_broken: BrokenLink | None = None


def stored(entry: AuditEntryPublic | Mapping[str, Any]) -> dict[str, Any]:
    """An entry as the audit service stores it (``_id``, datetimes), from its stored or public form."""
    if not isinstance(entry, AuditEntryPublic):
        if "_id" in entry:
            return dict(entry)
        entry = AuditEntryPublic.model_validate(entry)
    doc = entry.model_dump()
    doc["_id"] = doc.pop("id")
    return doc


def check_entries(
    entries: Iterable[AuditEntryPublic | Mapping[str, Any]], verify: SignatureCheck | None = None
) -> ChainCheck:
    """Check a team's entries, per chain in seq order: hashes, links between consecutive seqs, signatures.

    Gaps in seq are expected (other teams' entries sit between) and are not reported; removing
    another team's entry is for the platform verification to find. Legacy entries (``v`` other
    than 4) need the service's chain key to check their contents: only their links are checked.
    Without ``verify``, a signed entry's signature is counted as unchecked (a missing one is
    still reported).
    """
    chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        doc = stored(entry)
        chains[str(doc.get("chain"))].append(doc)
    counts = {"entries": 0, "signatures_checked": 0, "signatures_unchecked": 0, "legacy_unchecked": 0}
    first: BrokenLink | None = None
    for chain in sorted(chains):
        previous: dict[str, Any] | None = None
        for doc in sorted(chains[chain], key=lambda d: int(d.get("seq") or 0)):
            problem = _problem(chain, doc, previous, verify, counts)
            if problem and first is None:
                first = BrokenLink(chain=chain, seq=int(doc.get("seq") or 0), entry_id=doc.get("_id"), problem=problem)
            previous = doc
    return ChainCheck(ok=first is None, chains=len(chains), first_broken=first, **counts)


def _problem(
    chain: str,
    doc: dict[str, Any],
    previous: dict[str, Any] | None,
    verify: SignatureCheck | None,
    counts: dict[str, int],
) -> str | None:
    """What is wrong with ``doc`` (after ``previous`` in its chain), counting what was checked."""
    counts["entries"] += 1
    seq, version, sig = int(doc.get("seq") or 0), doc.get("v"), doc.get("sig")
    problems: list[str] = []
    if previous is not None and previous.get("seq") == seq:
        problems.append(REPEATED_SEQ)
    elif previous is not None and previous.get("seq") == seq - 1 and doc.get("prev_hash") != previous.get("hash"):
        problems.append(BROKEN_LINK)
    if version != VERSION:
        counts["legacy_unchecked"] += 1
    elif link(str(doc.get("prev_hash")), doc) != doc.get("hash"):
        problems.append(EDITED)
    if sig is None:
        if version == VERSION and must_be_signed(seq):
            problems.append(BAD_ENTRY_SIGNATURE)
    elif verify is None:
        counts["signatures_unchecked"] += 1
    else:
        counts["signatures_checked"] += 1
        if not verify("entry", entry_fields(chain, seq, doc.get("hash")), sig):
            problems.append(BAD_ENTRY_SIGNATURE)
    return problems[0] if problems else None
