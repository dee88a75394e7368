"""The audit log's chains: one per source topic-partition, keyed, verifiable end to end.

Each entry stores ``hash = HMAC-SHA256(AUDIT_CHAIN_KEY, prev_hash + canonical(entry))`` and a
dense ``seq``; the chain's head (last seq and hash) is kept in ``audit_heads``. The canonical
form covers every field the audit API shows or filters on.

Threat model (docs/operations.md, "Audit log"): someone who can write to the database but does
not hold the chain key cannot edit, insert, delete or reorder entries without ``verify``
finding the first broken link, nor forge a new chain: every hash needs the key. Cutting the
tail and rewinding the head is the one change the links alone cannot show; verification
checkpoints (the length last verified) and ``registry_audit_chain_length`` in Prometheus, which
the database's writer cannot reach, show it. Entries written before keyed chains (``v`` absent)
are verified with plain SHA-256 over their original fields.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.chassis.mongo import AUDIT_HEADS, AUDIT_LOG, AUDIT_VERIFIED
from shared.chassis.settings import ConfigurationError
from shared.contract.documents import Document

GENESIS = "0" * 64
VERSION = 2
CHAINED_FIELDS = (
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
        """The hash of ``entry`` following ``prev_hash``."""
        if entry.get("v") is None:  # written before keyed chains
            return hashlib.sha256(prev_hash.encode() + canonical(entry, _LEGACY_FIELDS)).hexdigest()
        return hmac.new(self._key, prev_hash.encode() + canonical(entry), hashlib.sha256).hexdigest()

    def seal(self, chain: str, seq: int, hash_: str) -> str:
        """A MAC over a verification checkpoint, so a forged checkpoint cannot skip entries."""
        return hmac.new(self._key, f"{chain}|{seq}|{hash_}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Verdict:
    """Result of a verification: ``ok``, how many entries were checked, and the first broken link."""

    ok: bool
    entries: int
    chains: int
    broken: dict[str, Any] | None = None
    scope: str = "all"

    def public(self) -> dict[str, Any]:
        """The JSON answer of ``GET /v1/audit/verify``."""
        body: dict[str, Any] = {"ok": self.ok, "entries": self.entries, "chains": self.chains, "scope": self.scope}
        if self.broken:
            body["first_broken"] = self.broken
        return body


class _Broken(Exception):
    def __init__(self, chain: str, seq: int, doc: Document | None, problem: str) -> None:
        super().__init__(problem)
        self.detail = {"chain": chain, "seq": seq, "entry_id": doc["_id"] if doc else None, "problem": problem}


def check_link(key: ChainKey, doc: Document, expected_seq: int, prev_hash: str) -> str | None:
    """Why ``doc`` does not follow ``prev_hash`` at ``expected_seq``, or ``None`` if it does."""
    if doc["seq"] != expected_seq:
        return "entry missing"
    if doc.get("prev_hash") != prev_hash:
        return "previous hash does not match (entry moved or removed)"
    if doc.get("hash") != key.link(prev_hash, doc):
        return "hash does not match (entry edited)"
    return None


async def verify(db: AsyncDatabase[Document], key: ChainKey, *, full: bool = True, page: int = 5_000) -> Verdict:
    """Walk every chain in ``seq`` order and report the first entry that does not link.

    Chains are found from the entries themselves as well as from the heads, so a chain whose
    head was deleted, or entries written past a head, are found too. Unless ``full``, each chain
    is walked from its last verified checkpoint (itself sealed with the key); a successful walk
    moves the checkpoints.
    """
    chains = sorted(set(await db[AUDIT_LOG].distinct("chain")) | set(await db[AUDIT_HEADS].distinct("_id")))
    checkpoints = {
        doc["_id"]: doc
        async for doc in db[AUDIT_VERIFIED].find({})
        if doc.get("mac") == key.seal(doc["_id"], doc["seq"], doc["hash"])  # a forged one is ignored
    }
    entries, reached = 0, {}
    try:
        for chain in chains:
            counted, last_seq, last_hash = await _walk(db, key, chain, checkpoints.get(chain), page, resume=not full)
            entries += counted
            reached[chain] = (last_seq, last_hash)
    except _Broken as broken:
        return Verdict(False, entries, len(chains), broken.detail)
    for chain, (seq, hash_) in reached.items():
        await db[AUDIT_VERIFIED].replace_one(
            {"_id": chain},
            {"seq": seq, "hash": hash_, "mac": key.seal(chain, seq, hash_), "verified_at": datetime.now(UTC)},
            upsert=True,
        )
    return Verdict(True, entries, len(chains))


async def _start(
    db: AsyncDatabase[Document], key: ChainKey, chain: str, checkpoint: Document | None
) -> tuple[int, str]:
    """Where a walk starts: the genesis, or a checkpoint whose entry is still there, unchanged."""
    if checkpoint is None:
        return 0, GENESIS
    doc = await db[AUDIT_LOG].find_one({"chain": chain, "seq": checkpoint["seq"]})
    if doc is None or doc.get("hash") != checkpoint["hash"] or doc["hash"] != key.link(doc.get("prev_hash", ""), doc):
        raise _Broken(chain, checkpoint["seq"], doc, "entry verified before is missing or changed")
    return checkpoint["seq"], checkpoint["hash"]


async def _walk(
    db: AsyncDatabase[Document], key: ChainKey, chain: str, checkpoint: Document | None, page: int, *, resume: bool
) -> tuple[int, int, str]:
    """Verify one chain; return (entries checked, last seq, last hash) or raise :class:`_Broken`."""
    last_seq, prev_hash = await _start(db, key, chain, checkpoint if resume else None)
    counted = 0
    while True:
        docs = (
            await db[AUDIT_LOG]
            .find({"chain": chain, "seq": {"$gt": last_seq, "$lte": last_seq + page}})
            .sort("seq", 1)
            .to_list()
        )
        for doc in docs:
            problem = check_link(key, doc, last_seq + 1, prev_hash)
            if problem:
                raise _Broken(chain, last_seq + 1, doc, problem)
            last_seq, prev_hash, counted = doc["seq"], doc["hash"], counted + 1
        if len(docs) == page:
            continue
        # The end of the entries: the head must name exactly this entry. A head ahead of it means
        # entries were removed; entries past the head were written around the service. Appends
        # that landed while walking move the head on: then keep walking.
        head = await db[AUDIT_HEADS].find_one({"_id": chain})
        if head is None:
            raise _Broken(chain, last_seq, None, "chain has no head (head deleted)")
        if head["seq"] > last_seq:
            if await db[AUDIT_LOG].find_one({"chain": chain, "seq": last_seq + 1}, {"_id": 1}) is None:
                raise _Broken(chain, last_seq + 1, None, "entry missing")
            continue
        if head["seq"] < last_seq:
            raise _Broken(chain, head["seq"] + 1, None, "entries beyond the head (written around the service)")
        if head["hash"] != prev_hash:
            raise _Broken(chain, last_seq, None, "head does not match")
        if checkpoint is not None and last_seq < checkpoint.get("seq", 0):
            raise _Broken(chain, last_seq, None, "chain is shorter than when last verified (tail removed)")
        return counted, last_seq, prev_hash
