"""The audit log's chains: one per source topic-partition, signed, verifiable by anyone.

How entries are linked is :mod:`audit.links`. Threat model (docs/operations.md, "Audit log"):
someone who can write to the database but does not hold the audit service's private key cannot
edit, insert, delete or reorder entries, append past a head, or move a head, without ``verify``
finding it: every head (and every 64th entry) is signed, and the hashes in between are
plain SHA-256 that anyone recomputes. Checking needs only the public keys. Cutting the tail and
putting back an older signed head is the one change signatures alone cannot show; verification
checkpoints (signed, the length last verified) and ``registry_audit_chain_length`` in
Prometheus, which the database's writer cannot reach, show it.

Expired entries (access events past their retention) are the one absence that is not a break:
expiry removes the oldest entries first, so a walk accepts missing entries only before the
first entry present (or after one that has itself expired), and only where the entry after
them (or the signed head) states, under its hash, that they had all expired. A removed entry
that had not expired, or one that never expires, is reported like any other deletion.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from audit.links import (
    CHAINED_FIELDS,
    GENESIS,
    LEGACY_VERSIONS,
    VERSION,
    ChainKey,
    Tail,
    Verifier,
    canonical,
    entry_fields,
    extend,
    may_be_gone,
    may_precede_a_gap,
)
from audit.signing import KeyRing, SigningKey
from audit.storage import AUDIT_HEADS, AUDIT_LOG, AUDIT_VERIFIED
from registry_contract.audit_chain import BAD_ENTRY_SIGNATURE, EDITED
from registry_contract.documents import Document

__all__ = [
    "BAD_ENTRY_SIGNATURE",
    "CHAINED_FIELDS",
    "EDITED",
    "GENESIS",
    "VERSION",
    "ChainKey",
    "Tail",
    "Verdict",
    "Verifier",
    "canonical",
    "check_link",
    "extend",
    "may_be_gone",
    "verify",
    "verify_chain",
    "verify_legacy",
]

BAD_HEAD_SIGNATURE = "head is not signed by the audit service's key (head moved, edited or forged)"
LEGACY_AFTER_ANCHOR = "legacy entry after the chain's signed migration point (written around the service)"
_CHECKPOINT_GONE = "entry verified before is missing or changed"
EXPIRY_HASHED = (3, VERSION)  # versions whose hash covers the expiry fields


@dataclass
class Verdict:
    """Result of a verification: ``ok``, how many entries were checked, and the first broken link.

    ``legacy_unchecked``: keyed legacy entries whose contents could not be checked (no chain key
    given); only their links and the signed migration point after them were.
    """

    ok: bool
    entries: int
    chains: int
    broken: dict[str, Any] | None = None
    scope: str = "all"
    legacy_unchecked: int = 0

    def public(self) -> dict[str, Any]:
        """The JSON answer of ``GET /v1/audit/verify``."""
        body: dict[str, Any] = {"ok": self.ok, "entries": self.entries, "chains": self.chains, "scope": self.scope}
        if self.broken:
            body["first_broken"] = self.broken
        if self.legacy_unchecked:
            body["legacy_unchecked"] = self.legacy_unchecked
        return body


class _Broken(Exception):
    def __init__(self, chain: str, seq: int, doc: Document | str | None, problem: str) -> None:
        super().__init__(problem)
        entry_id = doc["_id"] if isinstance(doc, dict) else doc
        self.detail = {"chain": chain, "seq": seq, "entry_id": entry_id, "problem": problem}


def check_link(digest: str | None, doc: Document, expected_seq: int, prev_hash: str) -> str | None:
    """Why ``doc`` (whose hash should be ``digest``; ``None``: unknown) does not follow ``prev_hash``."""
    if doc["seq"] != expected_seq:
        return "entry missing"
    if doc.get("prev_hash") != prev_hash:
        return "previous hash does not match (entry moved or removed)"
    if digest is not None and doc.get("hash") != digest:
        return EDITED
    return None


def version_problem(doc: Document, anchor_seq: int) -> str | None:
    """Why ``doc``'s version cannot stand where it is: only ``v`` 4 after the migration point, only legacy before."""
    version = doc.get("v")
    if doc["seq"] > anchor_seq:
        return None if version == VERSION else LEGACY_AFTER_ANCHOR
    return None if version in LEGACY_VERSIONS else "entry version does not match the chain's migration point"


def _rank(doc: Document) -> int:
    version = doc.get("v")
    return version if isinstance(version, int) else 0


def may_expire(first_missing: int, expiring_since: int | None) -> bool:
    """Whether entries from ``first_missing`` on are of the part of a chain that expires."""
    return expiring_since is not None and first_missing >= expiring_since


def expiry_problem(doc: Document, expiring_since: int | None) -> str | None:
    """Why ``doc`` cannot carry the expiry it carries: its chain does not expire there."""
    if doc.get("expires_at") is not None and not may_expire(doc["seq"], expiring_since):
        return "entry claims an expiry where its chain keeps entries for ever (entry edited)"
    return None


def anchor_problem(doc: Document, anchor_seq: int, anchor_hash: str) -> str | None:
    """Why ``doc`` contradicts the signed migration point (the last legacy entry's seq and hash)."""
    if anchor_seq and doc["seq"] == anchor_seq and doc.get("hash") != anchor_hash:
        return "hash does not match the chain's signed migration point (legacy entries rewritten)"
    if doc["seq"] == anchor_seq + 1 and doc.get("prev_hash") != anchor_hash:
        return "previous hash does not match the chain's signed migration point"
    return None


@dataclass
class _Walk:
    """Where a walk along one chain stands; each entry read moves it on, or is the break."""

    verifier: Verifier
    chain: str
    now: datetime
    anchor_seq: int = 0
    anchor_hash: str = GENESIS
    expiring_since: int | None = None  # the first seq that may expire, as the head states
    head_seq: int | None = None  # the head's seq when the walk began: entries past it are remembered
    legacy_head: ChainKey | None = None  # migrating: the head is a legacy one, MAC'd under this key
    seq: int = 0
    hash: str = GENESIS
    read: bool = True  # False: the walk stands on a checkpoint (or head) whose entry has expired
    counted: int = 0
    unchecked: int = 0
    last_id: str | None = None
    version: int = 0  # the last entry's version (none: 0); never decreases along a chain
    gap_may_follow: bool = False  # the entry stood on may be followed by expired ones (it expired itself)
    beyond: dict[int, str] = field(default_factory=dict)

    def anchored(self, head: Document | None) -> _Walk:
        """Take the migration point the (not yet verified) head states; ``end`` checks it."""
        if head is not None:
            tail = Tail.of(head)
            self.anchor_seq, self.anchor_hash, self.head_seq = tail.anchor_seq, tail.anchor_hash, tail.seq
            self.expiring_since = tail.expiring_since
            if self.legacy_head is not None:  # a legacy head: its own end is the migration point to be
                self.anchor_seq, self.anchor_hash, self.expiring_since = tail.seq, tail.hash, 1
        return self

    @property
    def first_missing(self) -> int:
        """The first seq an absence after this point would concern."""
        return self.seq + 1 if self.read else self.seq

    def step(self, doc: Document) -> None:
        """Move on to ``doc``, the next entry there is; raise :class:`_Broken` if it does not follow."""
        problem = version_problem(doc, self.anchor_seq)
        if problem is None and _rank(doc) < self.version:
            problem = "entry version lower than the entry's before it (legacy entries rewritten)"
        if problem is None and (self.head_seq is None or doc["seq"] <= self.head_seq):  # appended since: the head says
            problem = expiry_problem(doc, self.expiring_since)
        if problem:
            raise _Broken(self.chain, doc["seq"], doc, problem)
        digest = self.verifier.digest(doc.get("prev_hash", ""), doc)
        at = self.seq + 1
        if self.read and doc["seq"] == at:
            problem = check_link(digest, doc, at, self.hash)
        elif digest is not None and doc.get("hash") != digest:
            at, problem = doc["seq"], EDITED
        else:
            problem = self._after_missing(doc, checked=digest is not None)
        if problem:
            raise _Broken(self.chain, at, doc, problem)
        problem = anchor_problem(doc, self.anchor_seq, self.anchor_hash)
        if problem is None and not self.verifier.entry_ok(doc):
            problem = BAD_ENTRY_SIGNATURE
        if problem:
            raise _Broken(self.chain, doc["seq"], doc, problem)
        self.seq, self.hash, self.read, self.counted = doc["seq"], doc["hash"], True, self.counted + 1
        self.unchecked += digest is None
        self.last_id, self.version = doc["_id"], _rank(doc)
        self.gap_may_follow = may_precede_a_gap(doc, checked=digest is not None, now=self.now)
        if self.head_seq is not None and doc["seq"] > self.head_seq:
            self.beyond.setdefault(doc["seq"], doc["_id"])

    def _after_missing(self, doc: Document, *, checked: bool) -> str | None:
        """Why ``doc`` cannot follow the missing entries before it; ``None``: they expired.

        Only expiry facts under a checked hash count: a ``v`` 3 or 4 entry's (``v`` 2 and older
        entries do not hash them, and a keyed one's hash needs the chain key).
        """
        if doc["seq"] == self.seq + 1 and doc.get("prev_hash") != self.hash:
            return "previous hash does not match (entry moved or removed)"
        if self.stands_on_a_live_entry:
            return "entry missing"
        if not checked or doc.get("v") not in EXPIRY_HASHED or not may_expire(self.first_missing, self.expiring_since):
            return "entry missing" if self.read else _CHECKPOINT_GONE
        if not may_be_gone(
            doc.get("prev_expires_at"), doc.get("prev_expiring_from"), first_missing=self.first_missing, now=self.now
        ):
            return "entry missing" if self.read else _CHECKPOINT_GONE
        return None

    @property
    def stands_on_a_live_entry(self) -> bool:
        """Whether the walk stands on a present entry that has not expired: nothing after it can have.

        Expiry removes a prefix of the chain's expiring part (from ``expiring_since``), so missing
        entries are excused only before the first entry present there; a gap after a present entry
        of that part is a deletion unless that entry has expired too. Entries before it (kept for
        ever) and legacy entries without hashed expiry (before any that expired) end no run.
        """
        if not self.read or self.seq == 0 or self.gap_may_follow:
            return False
        unhashed_legacy = self.version < 3 and self.seq <= self.anchor_seq
        return may_expire(self.seq, self.expiring_since) and not unhashed_legacy

    def _authentic(self, head: Document) -> bool:
        if self.legacy_head is None:
            return self.verifier.head_ok(self.chain, head)
        # A legacy head must carry its MAC: one naming the last entry is no proof (anyone can hash entries).
        mac = head.get("mac")
        expected = self.legacy_head.seal_tail(self.chain, Tail.of(head))
        return isinstance(mac, str) and hmac.compare_digest(mac, expected)

    def end(self, head: Document) -> None:
        """Check the chain's head against the last entry read: signed, and naming exactly that entry.

        Entries past the head were written around the service; a head whose signature does not
        verify was moved or forged. A head ahead of the last entry means entries were removed,
        unless the signed head states that they all expired.
        """
        if head["seq"] < self.seq:
            if not self.read:
                raise _Broken(self.chain, self.seq, None, _CHECKPOINT_GONE)
            first = head["seq"] + 1
            raise _Broken(
                self.chain, first, self.beyond.get(first), "entries beyond the head (written around the service)"
            )
        if not self._authentic(head):
            named = self.last_id if self.read and head["seq"] == self.seq else None
            raise _Broken(self.chain, head["seq"], named, BAD_HEAD_SIGNATURE)
        tail = Tail.of(head)
        if self.legacy_head is None and (tail.anchor_seq, tail.anchor_hash) != (self.anchor_seq, self.anchor_hash):
            raise _Broken(self.chain, head["seq"], None, "the chain's migration point changed while verifying")
        if head["seq"] == self.seq and head["hash"] != self.hash:
            raise _Broken(self.chain, self.seq, self.last_id if self.read else None, "head does not match")
        if head["seq"] > self.seq or not self.read:
            since = self.expiring_since if self.legacy_head else tail.expiring_since
            gone = (
                not self.stands_on_a_live_entry
                and may_expire(self.first_missing, since)
                and may_be_gone(tail.expires_at, tail.expiring_from, first_missing=self.first_missing, now=self.now)
            )
            if not gone:
                raise _Broken(self.chain, self.first_missing, None, "entry missing" if self.read else _CHECKPOINT_GONE)
            self.seq, self.hash, self.read = tail.seq, tail.hash, False


def verify_chain(
    verifier: Verifier,
    chain: str,
    entries: Iterable[Document],
    head: Document | None,
    *,
    now: datetime,
    legacy_head: ChainKey | None = None,
) -> Verdict:
    """Verify one chain held in memory (its entries in ``seq`` order, its head), as :func:`verify` walks it.

    ``legacy_head``: the chain has not been migrated; its head is checked with this chain key.
    """
    walk = _Walk(verifier, chain, now, legacy_head=legacy_head).anchored(head)
    try:
        for doc in entries:
            walk.step(doc)
        if head is None:
            raise _Broken(chain, walk.seq, None, "chain has no head (head deleted)")
        walk.end(head)
    except _Broken as broken:
        return Verdict(False, walk.counted, 1, broken.detail, legacy_unchecked=walk.unchecked)
    return Verdict(True, walk.counted, 1, legacy_unchecked=walk.unchecked)


async def verify(
    db: AsyncDatabase[Document],
    verifier: Verifier,
    *,
    signer: SigningKey | None = None,
    full: bool = True,
    page: int = 5_000,
    now: datetime | None = None,
) -> Verdict:
    """Walk every chain in ``seq`` order and report the first entry that does not link.

    Chains are found from the entries themselves, the heads and the checkpoints, so a chain
    whose head was deleted, or entries written past a head, are found too. Unless ``full``,
    each chain is walked from its last verified checkpoint (itself signed); a successful walk
    moves the checkpoints when a ``signer`` is given (the service; an offline check only reads).
    Entries that expired (``now``: the present) may be missing.
    """
    now = now or datetime.now(UTC)
    checkpoints = {doc["_id"]: doc async for doc in db[AUDIT_VERIFIED].find({}) if verifier.checkpoint_ok(doc)}
    chains = sorted(
        set(await db[AUDIT_LOG].distinct("chain")) | set(await db[AUDIT_HEADS].distinct("_id")) | set(checkpoints)
    )
    entries, unchecked, reached = 0, 0, {}
    try:
        for chain in chains:
            walk = await _walk(db, _Walk(verifier, chain, now), checkpoints.get(chain), page, resume=not full)
            entries, unchecked = entries + walk.counted, unchecked + walk.unchecked
            reached[chain] = (walk.seq, walk.hash)
    except _Broken as broken:
        return Verdict(False, entries, len(chains), broken.detail, legacy_unchecked=unchecked)
    if signer is not None:
        for chain, (seq, hash_) in reached.items():
            checkpoint = {"seq": seq, "hash": hash_, "sig": signer.sign("checkpoint", entry_fields(chain, seq, hash_))}
            await db[AUDIT_VERIFIED].replace_one(
                {"_id": chain}, checkpoint | {"verified_at": datetime.now(UTC)}, upsert=True
            )
    return Verdict(True, entries, len(chains), legacy_unchecked=unchecked)


async def verify_legacy(
    db: AsyncDatabase[Document], key: ChainKey, chain: str, *, page: int = 5_000, now: datetime | None = None
) -> Verdict:
    """Verify a chain not yet migrated (its head MAC'd, its entries keyed) with the legacy chain key."""
    walk = _Walk(Verifier(KeyRing([]), legacy=key), chain, now or datetime.now(UTC), legacy_head=key)
    try:
        walk = await _walk(db, walk, None, page, resume=False)
    except _Broken as broken:
        return Verdict(False, walk.counted, 1, broken.detail)
    return Verdict(True, walk.counted, 1)


async def _start(db: AsyncDatabase[Document], walk: _Walk, start: Document | None) -> _Walk:
    """Where a walk starts: the genesis, or a checkpoint whose entry is unchanged (or has expired since)."""
    if start is None:
        return walk
    walk.seq, walk.hash = start["seq"], start["hash"]
    doc = await db[AUDIT_LOG].find_one({"chain": walk.chain, "seq": start["seq"]})
    if doc is None:  # expired, or removed: what follows it must say which
        walk.read = False
        return walk
    digest = walk.verifier.digest(doc.get("prev_hash", ""), doc)
    if doc.get("hash") != start["hash"] or (digest is not None and doc["hash"] != digest):
        raise _Broken(walk.chain, start["seq"], doc, _CHECKPOINT_GONE)
    walk.last_id = doc["_id"]
    walk.gap_may_follow = may_precede_a_gap(doc, checked=digest is not None, now=walk.now)
    return walk


async def _walk(
    db: AsyncDatabase[Document], walk: _Walk, checkpoint: Document | None, page: int, *, resume: bool
) -> _Walk:
    """Verify one chain to its head, from the genesis or (``resume``) the checkpoint; raise :class:`_Broken`."""
    chain, log = walk.chain, db[AUDIT_LOG]
    walk.anchored(await db[AUDIT_HEADS].find_one({"_id": chain}))
    walk = await _start(db, walk, checkpoint if resume else None)
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
            if walk.legacy_head is None:  # the chain may have begun to expire meanwhile (checked at the end)
                walk.expiring_since = Tail.of(head).expiring_since
            continue
        walk.end(head)
        if checkpoint is not None and walk.seq < checkpoint.get("seq", 0):
            raise _Broken(chain, walk.seq, None, "chain is shorter than when last verified (tail removed)")
        return walk
