"""How audit entries are linked: the canonical form of each version, the chain key, expiry.

Each entry stores ``hash = HMAC-SHA256(AUDIT_CHAIN_KEY, prev_hash + canonical(entry))`` and a
dense ``seq``; the chain's head (last seq and hash) is kept in ``audit_heads``. The canonical
form covers every field the audit API shows or filters on. Entries written before keyed chains
(``v`` absent) are linked with plain SHA-256 over their original fields, ``v`` 2 entries over
theirs; ``v`` 3 added the expiry fields below.

Retention: entries of an expiring topic (access events) carry ``expires_at``, which a TTL index
acts on and which never decreases along a chain; every entry carries, hashed, its predecessor's
``prev_expires_at`` and the first ``seq`` of the run of expiring entries that predecessor ends
(``prev_expiring_from``). Entries may therefore be missing before an entry only if all of them
lie in that run and that time has passed (:func:`may_be_gone`). The head seals the chain's end
the same way (:class:`Tail`), so a chain whose every entry expired still verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.chassis.settings import ConfigurationError
from shared.contract.documents import Document

GENESIS = "0" * 64
VERSION = 3
_V2_FIELDS = (
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
CHAINED_FIELDS = (*_V2_FIELDS, "expires_at", "prev_expires_at", "prev_expiring_from")
_LEGACY_FIELDS = (
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
_FIELDS = {2: _V2_FIELDS, VERSION: CHAINED_FIELDS}
# Entries expire by the database's clock and are judged by the verifier's: this much apart is tolerated.
CLOCK_SKEW = timedelta(minutes=5)


def _plain(value: Any) -> Any:
    # Datetimes as MongoDB stores them (UTC, milliseconds), so a read-back entry hashes the same.
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.isoformat(timespec="milliseconds")
    return str(value)


def canonical(entry: Document, fields: tuple[str, ...] = CHAINED_FIELDS) -> bytes:
    """The bytes an entry's hash covers: its chained fields as sorted, compact JSON."""
    body = {name: entry.get(name) for name in fields}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=_plain).encode()


class ChainKey:
    """Links entries with the audit chain key (HMAC-SHA256)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ConfigurationError("AUDIT_CHAIN_KEY must be at least 16 bytes")
        self._key = key

    def link(self, prev_hash: str, entry: Document) -> str:
        """The hash of ``entry`` following ``prev_hash``, over the fields of the entry's version."""
        version = entry.get("v")
        if version is None:  # written before keyed chains
            return hashlib.sha256(prev_hash.encode() + canonical(entry, _LEGACY_FIELDS)).hexdigest()
        fields = _FIELDS.get(version, CHAINED_FIELDS) if isinstance(version, int) else CHAINED_FIELDS
        return hmac.new(self._key, prev_hash.encode() + canonical(entry, fields), hashlib.sha256).hexdigest()

    def seal(self, chain: str, seq: int, hash_: str) -> str:
        """A MAC over a verification checkpoint, so a forged checkpoint cannot skip entries."""
        return hmac.new(self._key, f"{chain}|{seq}|{hash_}".encode(), hashlib.sha256).hexdigest()

    def seal_tail(self, chain: str, tail: Tail) -> str:
        """A MAC over a chain's head, expiry included, so a head cannot claim its entries expired."""
        expires = _plain(tail.expires_at) if tail.expires_at else ""
        message = f"head|{chain}|{tail.seq}|{tail.hash}|{expires}|{tail.expiring_from or ''}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Tail:
    """The end of a chain, as its head stores it: what the next entry links to."""

    seq: int = 0
    hash: str = GENESIS
    offset: int = -1
    expires_at: datetime | None = None  # of the last entry; None: it never expires
    expiring_from: int | None = None  # first seq of the run of expiring entries the last entry ends

    @classmethod
    def of(cls, head: Document | None) -> Tail:
        """The tail a stored head describes (a chain without a head: the genesis)."""
        if head is None:
            return cls()
        return cls(head["seq"], head["hash"], head["offset"], head.get("expires_at"), head.get("expiring_from"))

    def head(self, key: ChainKey, chain: str) -> Document:
        """The head document's fields, sealed."""
        return {
            "seq": self.seq,
            "hash": self.hash,
            "offset": self.offset,
            "expires_at": self.expires_at,
            "expiring_from": self.expiring_from,
            "mac": key.seal_tail(chain, self),
        }


def extend(key: ChainKey, tail: Tail, entry: Document, *, retention: timedelta | None) -> Tail:
    """Chain ``entry`` onto ``tail`` (setting its ``seq``, links and expiry) and return the new tail.

    With a ``retention``, the entry expires that long after it was received, but never before its
    predecessor: expiry only ever removes the oldest entries of a chain.
    """
    seq = tail.seq + 1
    entry["seq"], entry["prev_hash"] = seq, tail.hash
    if tail.expires_at is not None:
        entry["prev_expires_at"], entry["prev_expiring_from"] = tail.expires_at, tail.expiring_from
    expires_at = expiring_from = None
    if retention is not None:
        expires_at = entry["received_at"] + retention
        if tail.expires_at is not None:
            expires_at, expiring_from = max(expires_at, tail.expires_at), tail.expiring_from
        else:
            expiring_from = seq
        entry["expires_at"] = expires_at
    entry["hash"] = key.link(tail.hash, entry)
    return Tail(seq, entry["hash"], entry["offset"], expires_at, expiring_from)


def may_be_gone(expires_at: Any, expiring_from: Any, *, first_missing: int, now: datetime) -> bool:
    """Whether entries from ``first_missing`` on may have expired, given what follows them states.

    ``expires_at`` and ``expiring_from`` are the hashed ``prev_expires_at`` and
    ``prev_expiring_from`` of the entry after the missing ones (or a sealed head's): every missing
    entry must lie in that run of expiring entries, and the last of them must have expired.
    """
    return isinstance(expiring_from, int) and first_missing >= expiring_from and has_expired(expires_at, now=now)


def has_expired(expires_at: Any, *, now: datetime) -> bool:
    """Whether a stored expiry has passed (within :data:`CLOCK_SKEW`); anything else never expires."""
    if not isinstance(expires_at, datetime):
        return False
    moment = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    return moment <= now + CLOCK_SKEW
