"""The audit log's hash chains: one per source topic-partition, verifiable end to end.

Each entry stores ``hash = sha256(prev_hash + canonical(entry))`` and a dense ``seq``; the
chain's head (last seq, hash and source offset) is kept in ``audit_heads``. An edited entry
breaks its hash, a deleted one leaves a gap in ``seq`` (or a head ahead of the last entry), and
swapped entries break both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import AUDIT_HEADS, AUDIT_LOG, Document

GENESIS = "0" * 64
CHAINED_FIELDS = (
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


def canonical(entry: Document) -> bytes:
    """The bytes an entry's hash covers: its chained fields as sorted, compact JSON."""
    body = {name: entry.get(name) for name in CHAINED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def link(prev_hash: str, entry: Document) -> str:
    """The hash of ``entry`` following ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


@dataclass
class Verdict:
    """Result of verifying every chain: ``ok``, how many entries, and the first broken link."""

    ok: bool
    entries: int
    chains: int
    broken: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        """The JSON answer of ``GET /v1/audit/verify``."""
        body: dict[str, Any] = {"ok": self.ok, "entries": self.entries, "chains": self.chains}
        if self.broken:
            body["first_broken"] = self.broken
        return body


async def verify(db: AsyncDatabase[Document], *, page: int = 5_000) -> Verdict:
    """Walk every chain in ``seq`` order and report the first entry that does not link."""
    entries = 0
    heads = await db[AUDIT_HEADS].find({}).sort("_id", 1).to_list()
    for head in heads:
        chain, prev_hash, expected = head["_id"], GENESIS, 1
        while expected <= head["seq"]:
            # Bounded by the head read above: entries appended meanwhile belong to a later verify.
            upper = min(expected + page, head["seq"] + 1)
            docs = await db[AUDIT_LOG].find({"chain": chain, "seq": {"$gte": expected, "$lt": upper}}).to_list()
            docs.sort(key=lambda d: d["seq"])
            for doc in docs:
                problem = _check(doc, expected, prev_hash)
                if problem:
                    return Verdict(False, entries, len(heads), _broken(chain, expected, doc, problem))
                prev_hash, expected = doc["hash"], expected + 1
                entries += 1
            if expected < upper:
                return Verdict(False, entries, len(heads), _broken(chain, expected, None, "entry missing"))
        if prev_hash != head["hash"]:
            return Verdict(False, entries, len(heads), _broken(chain, head["seq"], None, "head does not match"))
    return Verdict(True, entries, len(heads))


def _check(doc: Document, expected: int, prev_hash: str) -> str | None:
    if doc["seq"] != expected:
        return "entry missing"
    if doc.get("prev_hash") != prev_hash:
        return "previous hash does not match (entry moved or removed)"
    if doc.get("hash") != link(prev_hash, doc):
        return "hash does not match (entry edited)"
    return None


def _broken(chain: str, seq: int, doc: Document | None, problem: str) -> dict[str, Any]:
    return {"chain": chain, "seq": seq, "entry_id": doc["_id"] if doc else None, "problem": problem}
