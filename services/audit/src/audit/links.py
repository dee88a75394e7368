"""How audit entries are linked: the canonical form of each version, signed heads, expiry.

Each entry (``v`` 4) stores ``hash = SHA-256(prev_hash + canonical(entry))`` and a dense
``seq``: plain SHA-256, so anyone can recompute it (the hashing and its offline check live in the
contract, :mod:`registry_contract.audit_chain`; this module adds the service's side). What makes
the chain unforgeable is the audit service's Ed25519 signature (:mod:`audit.signing`) over the
chain's head (last seq, hash, expiry facts and migration point), kept in ``audit_heads``, and
over every entry whose seq is a multiple of :data:`SIGNED_EVERY` (its ``sig``, required there):
without the private key nobody can move a head or append past it, and a chain re-hashed after an
edit shows at the next signed entry.

Entries written before signed chains are *legacy*: without ``v`` (plain SHA-256 over their
original fields), ``v`` 2 and 3 (HMAC-SHA256 under ``AUDIT_CHAIN_KEY``; 3 added the expiry
fields). A chain that holds them was re-anchored once (:mod:`audit.migration`): its head states,
signed, the seq and hash of the last legacy entry (``anchor_seq``/``anchor_hash``); every entry
after it must be ``v`` 4, and only the legacy part needs the chain key to check its contents.

Retention: entries of an expiring topic (access events) carry ``expires_at``, which a TTL index
acts on and which never decreases along a chain; every entry carries, hashed, its predecessor's
``prev_expires_at`` and the first ``seq`` of the run of expiring entries that predecessor ends
(``prev_expiring_from``). Entries may therefore be missing before an entry only if all of them
lie in that run and that time has passed (:func:`may_be_gone`). The signed head states the
chain's end the same way (:class:`Tail`), so a chain whose every entry expired still verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.signing import KeyRing, SigningKey
from registry_contract.audit_chain import (
    CHAINED_FIELDS,
    GENESIS,
    LEGACY_FIELDS,
    LEGACY_VERSIONS,
    SIGNED_EVERY,
    V2_FIELDS,
    VERSION,
    canonical,
    entry_fields,
    link,
    must_be_signed,
)
from registry_contract.audit_chain import plain as _plain
from registry_contract.documents import Document
from shared.chassis.settings import ConfigurationError

__all__ = [
    "CHAINED_FIELDS",
    "GENESIS",
    "LEGACY_VERSIONS",
    "MIGRATED",
    "SIGNED_EVERY",
    "VERSION",
    "ChainKey",
    "Tail",
    "Verifier",
    "canonical",
    "entry_fields",
    "extend",
    "has_expired",
    "head_fields",
    "link",
    "may_be_gone",
    "may_precede_a_gap",
    "must_be_signed",
    "sign_entry",
]

MIGRATED = "registry.audit.chain.migrated"  # the type of the (signed, kept for ever) entry a migration chains
_FIELDS = {2: V2_FIELDS, 3: CHAINED_FIELDS}
# Entries expire by the database's clock and are judged by the verifier's: this much apart is tolerated.
CLOCK_SKEW = timedelta(minutes=5)


class ChainKey:
    """The legacy chain key (HMAC-SHA256): checks entries written before signed chains."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ConfigurationError("AUDIT_CHAIN_KEY must be at least 16 bytes")
        self._key = key

    def link(self, prev_hash: str, entry: Document) -> str:
        """The hash of a legacy ``entry`` following ``prev_hash``, over the fields of the entry's version."""
        version = entry.get("v")
        if version is None:  # written before keyed chains
            return hashlib.sha256(prev_hash.encode() + canonical(entry, LEGACY_FIELDS)).hexdigest()
        fields = _FIELDS.get(version, CHAINED_FIELDS) if isinstance(version, int) else CHAINED_FIELDS
        return hmac.new(self._key, prev_hash.encode() + canonical(entry, fields), hashlib.sha256).hexdigest()

    def seal(self, chain: str, seq: int, hash_: str) -> str:
        """The MAC legacy verification checkpoints carried."""
        return hmac.new(self._key, f"{chain}|{seq}|{hash_}".encode(), hashlib.sha256).hexdigest()

    def seal_tail(self, chain: str, tail: Tail) -> str:
        """The MAC a legacy head carried over its end, expiry included."""
        expires = _plain(tail.expires_at) if tail.expires_at else ""
        message = f"head|{chain}|{tail.seq}|{tail.hash}|{expires}|{tail.expiring_from or ''}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()


class Verifier:
    """Checks entries and signatures with the published public keys (and, for legacy entries, the chain key).

    Holds nothing that can extend a chain: ``registry audit verify`` and auditors use it offline.
    """

    def __init__(self, keys: KeyRing, legacy: ChainKey | None = None) -> None:
        self.keys, self.legacy = keys, legacy

    def digest(self, prev_hash: str, entry: Document) -> str | None:
        """What ``entry``'s hash must be after ``prev_hash``; ``None``: a keyed legacy entry and no chain key."""
        version = entry.get("v")
        if version == VERSION:
            return link(prev_hash, entry)
        if version is None:
            return hashlib.sha256(prev_hash.encode() + canonical(entry, LEGACY_FIELDS)).hexdigest()
        return self.legacy.link(prev_hash, entry) if self.legacy else None

    def head_ok(self, chain: str, head: Document) -> bool:
        """Whether ``head`` is signed, by a listed key, over everything it states."""
        return self.keys.verify("head", head_fields(chain, Tail.of(head)), head.get("sig"))

    def entry_ok(self, doc: Document) -> bool:
        """Whether an entry's signature verifies: required on a ``v`` 4 entry at a signed seq, checked if present."""
        if "sig" not in doc:
            return doc.get("v") != VERSION or not must_be_signed(doc["seq"])
        return self.keys.verify("entry", entry_fields(doc["chain"], doc["seq"], doc.get("hash")), doc["sig"])

    def checkpoint_ok(self, doc: Document) -> bool:
        """Whether a verification checkpoint is signed."""
        return self.keys.verify("checkpoint", entry_fields(doc["_id"], doc["seq"], doc["hash"]), doc.get("sig"))


def head_fields(chain: str, tail: Tail) -> dict[str, Any]:
    """What a head's signature covers."""
    return {
        "chain": chain,
        "seq": tail.seq,
        "hash": tail.hash,
        "offset": tail.offset,
        "expires_at": _plain(tail.expires_at) if tail.expires_at else None,
        "expiring_from": tail.expiring_from,
        "anchor_seq": tail.anchor_seq,
        "anchor_hash": tail.anchor_hash,
        "expiring_since": tail.expiring_since,
    }


@dataclass(frozen=True)
class Tail:
    """The end of a chain, as its head stores it: what the next entry links to.

    ``anchor_seq``/``anchor_hash``: the last legacy entry of a migrated chain (0 and the genesis
    for a chain that was signed from its start); every entry after it is ``v`` 4.
    ``expiring_since``: the first seq that could expire (``None``: none can), so a chain of a
    topic kept for ever never excuses a gap, whatever its entries claim.
    """

    seq: int = 0
    hash: str = GENESIS
    offset: int = -1
    expires_at: datetime | None = None  # of the last entry; None: it never expires
    expiring_from: int | None = None  # first seq of the run of expiring entries the last entry ends
    anchor_seq: int = 0
    anchor_hash: str = GENESIS
    expiring_since: int | None = None

    @classmethod
    def of(cls, head: Document | None) -> Tail:
        """The tail a stored head describes (a chain without a head: the genesis)."""
        if head is None:
            return cls()
        return cls(
            head["seq"],
            head["hash"],
            head["offset"],
            head.get("expires_at"),
            head.get("expiring_from"),
            head.get("anchor_seq", 0),
            head.get("anchor_hash", GENESIS),
            head.get("expiring_since"),
        )

    def head(self, signer: SigningKey, chain: str) -> Document:
        """The head document's fields, signed."""
        return {
            "seq": self.seq,
            "hash": self.hash,
            "offset": self.offset,
            "expires_at": self.expires_at,
            "expiring_from": self.expiring_from,
            "anchor_seq": self.anchor_seq,
            "anchor_hash": self.anchor_hash,
            "expiring_since": self.expiring_since,
            "sig": signer.sign("head", head_fields(chain, self)),
        }


def extend(tail: Tail, entry: Document, *, retention: timedelta | None) -> Tail:
    """Chain ``entry`` (``v`` 4) onto ``tail`` (setting its ``seq``, links and expiry) and return the new tail.

    With a ``retention``, the entry expires that long after it was received, but never before its
    predecessor: expiry only ever removes the oldest entries of a chain.
    """
    seq = tail.seq + 1
    entry["v"], entry["seq"], entry["prev_hash"] = VERSION, seq, tail.hash
    if tail.expires_at is not None:
        entry["prev_expires_at"], entry["prev_expiring_from"] = tail.expires_at, tail.expiring_from
    expires_at = expiring_from = None
    since = tail.expiring_since
    if retention is not None:
        since = seq if since is None else since
        expires_at = entry["received_at"] + retention
        if tail.expires_at is not None:
            expires_at, expiring_from = max(expires_at, tail.expires_at), tail.expiring_from
        else:
            expiring_from = seq
        entry["expires_at"] = expires_at
    entry["hash"] = link(tail.hash, entry)
    return Tail(
        seq, entry["hash"], entry["offset"], expires_at, expiring_from, tail.anchor_seq, tail.anchor_hash, since
    )


def sign_entry(signer: SigningKey, entry: Document) -> None:
    """Sign ``entry`` (its chain, seq and hash; the hash covers the rest)."""
    entry["sig"] = signer.sign("entry", entry_fields(entry["chain"], entry["seq"], entry["hash"]))


def may_be_gone(expires_at: Any, expiring_from: Any, *, first_missing: int, now: datetime) -> bool:
    """Whether entries from ``first_missing`` on may have expired, given what follows them states.

    ``expires_at`` and ``expiring_from`` are the hashed ``prev_expires_at`` and
    ``prev_expiring_from`` of the entry after the missing ones (or a sealed head's): every missing
    entry must lie in that run of expiring entries, and the last of them must have expired.
    """
    return isinstance(expiring_from, int) and first_missing >= expiring_from and has_expired(expires_at, now=now)


def may_precede_a_gap(doc: Document, *, checked: bool, now: datetime) -> bool:
    """Whether missing entries may follow ``doc``, an entry still present: expiry removes the oldest first.

    Only if ``doc`` has itself expired by its hashed (``checked``, ``v`` 3 or 4) ``expires_at`` (the
    TTL pass that removes its successors is under way), or it is a migration entry the service
    signed, which is kept for ever amid an expiring chain.
    """
    if doc.get("type") == MIGRATED and doc.get("v") == VERSION and "sig" in doc:
        return True  # its signature is checked with the entry itself
    return checked and doc.get("v") in (3, VERSION) and has_expired(doc.get("expires_at"), now=now)


def has_expired(expires_at: Any, *, now: datetime) -> bool:
    """Whether a stored expiry has passed (within :data:`CLOCK_SKEW`); anything else never expires."""
    if not isinstance(expires_at, datetime):
        return False
    moment = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    return moment <= now + CLOCK_SKEW
