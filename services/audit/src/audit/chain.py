"""The audit log's chains: one per source topic-partition, keyed, verifiable end to end.

How entries are linked is :mod:`audit.links`. Threat model (docs/operations.md, "Audit log"):
someone who can write to the database but does not hold the chain key cannot edit, insert,
delete or reorder entries without ``verify`` finding the first broken link, nor forge a new
chain: every hash needs the key. Cutting the tail and rewinding the head is the one change the
links alone cannot show; verification checkpoints (the length last verified) and
``registry_audit_chain_length`` in Prometheus, which the database's writer cannot reach, show it.

Expired entries (access events past their retention) are the one absence that is not a break:
a walk accepts missing entries only where the entry after them (or the sealed head) states, under
the key, that they had all expired. A removed entry that had not expired, or one that never
expires, is reported like any other deletion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from audit.links import CHAINED_FIELDS, GENESIS, VERSION, ChainKey, Tail, canonical, extend, may_be_gone
from shared.chassis.mongo import AUDIT_HEADS, AUDIT_LOG, AUDIT_VERIFIED
from shared.contract.documents import Document

__all__ = [
    "CHAINED_FIELDS",
    "GENESIS",
    "VERSION",
    "ChainKey",
    "Tail",
    "Verdict",
    "canonical",
    "check_link",
    "extend",
    "may_be_gone",
    "verify",
    "verify_chain",
]


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


_CHECKPOINT_GONE = "entry verified before is missing or changed"


@dataclass
class _Walk:
    """Where a walk along one chain stands; each entry read moves it on, or is the break."""

    key: ChainKey
    chain: str
    now: datetime
    seq: int = 0
    hash: str = GENESIS
    read: bool = True  # False: the walk stands on a checkpoint (or head) whose entry has expired
    counted: int = 0

    @property
    def first_missing(self) -> int:
        """The first seq an absence after this point would concern."""
        return self.seq + 1 if self.read else self.seq

    def step(self, doc: Document) -> None:
        """Move on to ``doc``, the next entry there is; raise :class:`_Broken` if it does not follow."""
        at = self.seq + 1
        if self.read and doc["seq"] == at:
            problem = check_link(self.key, doc, at, self.hash)
        elif doc.get("hash") != self.key.link(doc.get("prev_hash", ""), doc):
            at, problem = doc["seq"], "hash does not match (entry edited)"
        else:
            problem = self._after_missing(doc)
        if problem:
            raise _Broken(self.chain, at, doc, problem)
        self.seq, self.hash, self.read, self.counted = doc["seq"], doc["hash"], True, self.counted + 1

    def _after_missing(self, doc: Document) -> str | None:
        """Why ``doc`` (its hash checked) cannot follow the missing entries before it; ``None``: they expired."""
        if doc["seq"] == self.seq + 1 and doc.get("prev_hash") != self.hash:
            return "previous hash does not match (entry moved or removed)"
        if not may_be_gone(
            doc.get("prev_expires_at"), doc.get("prev_expiring_from"), first_missing=self.first_missing, now=self.now
        ):
            return "entry missing" if self.read else _CHECKPOINT_GONE
        return None

    def end(self, head: Document) -> None:
        """Check the chain's head against the last entry read: it must name exactly that entry.

        A head ahead of it means entries were removed, unless the sealed head states that they
        all expired; entries past the head were written around the service.
        """
        if head["seq"] < self.seq:
            if not self.read:
                raise _Broken(self.chain, self.seq, None, _CHECKPOINT_GONE)
            raise _Broken(self.chain, head["seq"] + 1, None, "entries beyond the head (written around the service)")
        if head["seq"] == self.seq and head["hash"] != self.hash:
            raise _Broken(self.chain, self.seq, None, "head does not match")
        if head["seq"] > self.seq or not self.read:
            tail = Tail.of(head)
            sealed = head.get("mac") == self.key.seal_tail(self.chain, tail)
            if not sealed or not may_be_gone(
                tail.expires_at, tail.expiring_from, first_missing=self.first_missing, now=self.now
            ):
                raise _Broken(self.chain, self.first_missing, None, "entry missing" if self.read else _CHECKPOINT_GONE)
            self.seq, self.hash, self.read = tail.seq, tail.hash, False


def verify_chain(
    key: ChainKey, chain: str, entries: Iterable[Document], head: Document | None, *, now: datetime
) -> Verdict:
    """Verify one chain held in memory (its entries in ``seq`` order, its head), as :func:`verify` walks it."""
    walk = _Walk(key, chain, now)
    try:
        for doc in entries:
            walk.step(doc)
        if head is None:
            raise _Broken(chain, walk.seq, None, "chain has no head (head deleted)")
        walk.end(head)
    except _Broken as broken:
        return Verdict(False, walk.counted, 1, broken.detail)
    return Verdict(True, walk.counted, 1)


async def verify(
    db: AsyncDatabase[Document],
    key: ChainKey,
    *,
    full: bool = True,
    page: int = 5_000,
    now: datetime | None = None,
) -> Verdict:
    """Walk every chain in ``seq`` order and report the first entry that does not link.

    Chains are found from the entries themselves as well as from the heads, so a chain whose
    head was deleted, or entries written past a head, are found too. Unless ``full``, each chain
    is walked from its last verified checkpoint (itself sealed with the key); a successful walk
    moves the checkpoints. Entries that expired (``now``: the present) may be missing.
    """
    now = now or datetime.now(UTC)
    chains = sorted(set(await db[AUDIT_LOG].distinct("chain")) | set(await db[AUDIT_HEADS].distinct("_id")))
    checkpoints = {
        doc["_id"]: doc
        async for doc in db[AUDIT_VERIFIED].find({})
        if doc.get("mac") == key.seal(doc["_id"], doc["seq"], doc["hash"])  # a forged one is ignored
    }
    entries, reached = 0, {}
    try:
        for chain in chains:
            walk = await _walk(db, _Walk(key, chain, now), checkpoints.get(chain), page, resume=not full)
            entries += walk.counted
            reached[chain] = (walk.seq, walk.hash)
    except _Broken as broken:
        return Verdict(False, entries, len(chains), broken.detail)
    for chain, (seq, hash_) in reached.items():
        await db[AUDIT_VERIFIED].replace_one(
            {"_id": chain},
            {"seq": seq, "hash": hash_, "mac": key.seal(chain, seq, hash_), "verified_at": datetime.now(UTC)},
            upsert=True,
        )
    return Verdict(True, entries, len(chains))


async def _start(db: AsyncDatabase[Document], walk: _Walk, start: Document | None) -> _Walk:
    """Where a walk starts: the genesis, or a checkpoint whose entry is unchanged (or has expired since)."""
    if start is None:
        return walk
    walk.seq, walk.hash = start["seq"], start["hash"]
    doc = await db[AUDIT_LOG].find_one({"chain": walk.chain, "seq": start["seq"]})
    if doc is None:  # expired, or removed: what follows it must say which
        walk.read = False
    elif doc.get("hash") != start["hash"] or doc["hash"] != walk.key.link(doc.get("prev_hash", ""), doc):
        raise _Broken(walk.chain, start["seq"], doc, _CHECKPOINT_GONE)
    return walk


async def _walk(
    db: AsyncDatabase[Document], walk: _Walk, checkpoint: Document | None, page: int, *, resume: bool
) -> _Walk:
    """Verify one chain to its head, from the genesis or (``resume``) the checkpoint; raise :class:`_Broken`."""
    walk = await _start(db, walk, checkpoint if resume else None)
    chain, log = walk.chain, db[AUDIT_LOG]
    while True:
        window = {"chain": chain, "seq": {"$gt": walk.seq, "$lte": walk.seq + page}}
        docs = await log.find(window).sort("seq", 1).to_list()
        for doc in docs:
            walk.step(doc)
        if len(docs) == page:
            continue
        # Past the window, the next entry may follow a run of expired ones longer than a page.
        after = await log.find_one({"chain": chain, "seq": {"$gt": walk.seq}}, sort=[("seq", 1)])
        if after is not None:
            walk.step(after)
            continue
        # The end of the entries. Appends that landed while walking move the head on: keep walking.
        head = await db[AUDIT_HEADS].find_one({"_id": chain})
        if head is None:
            raise _Broken(chain, walk.seq, None, "chain has no head (head deleted)")
        if head["seq"] > walk.seq and await log.find_one({"chain": chain, "seq": {"$gt": walk.seq}}, {"_id": 1}):
            continue
        walk.end(head)
        if checkpoint is not None and walk.seq < checkpoint.get("seq", 0):
            raise _Broken(chain, walk.seq, None, "chain is shorter than when last verified (tail removed)")
        return walk
