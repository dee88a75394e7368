"""Appending entries to their chains in MongoDB, exactly once per source record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta

import structlog
from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from audit import metrics
from audit.entries import RECORD
from audit.links import Tail, Verifier, extend, must_be_signed, sign_entry
from audit.signing import KeyRing, SigningKey
from audit.storage import AUDIT_HEADS, AUDIT_LOG, AUDIT_RECORDS
from registry_contract.documents import Document
from shared.chassis.mongo import find_by_ids

log = structlog.get_logger(__name__)


class AuditStore:
    """Chains entries onto their heads and commits entries and heads in one transaction.

    Entries of a topic in ``retention`` (the access topic) expire that long after they were
    received (:func:`audit.links.extend`); every other entry is kept for ever. The new heads, and
    every entry at a signed seq (:func:`audit.links.must_be_signed`), are signed with ``signer``.

    A stored head is extended only if its signature verifies (``verifier``, the service's public
    keys) and it does not contradict the tail this process last wrote or verified on that chain
    (older, another hash at the same seq, another migration point): signing past a head someone
    wrote around the service would vouch for their entries. Such a chain is refused
    (:class:`ChainRefused`): counted, logged, named by :meth:`refusals` (``/readyz``), and the batch
    fails, so its records are retried and then dead-lettered with the reason, never chained.
    """

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: AsyncDatabase[Document],
        *,
        signer: SigningKey,
        verifier: Verifier | None = None,
        retention: Mapping[str, timedelta] | None = None,
    ) -> None:
        self._client, self._log, self._heads, self._signer = client, db[AUDIT_LOG], db[AUDIT_HEADS], signer
        self._records = db[AUDIT_RECORDS]
        self._verifier = verifier or Verifier(KeyRing.of(signer))
        self._retention = dict(retention or {})
        self._tails: dict[str, Tail] = {}  # each chain's end as this process last wrote or verified it
        self._refused: dict[str, str] = {}  # chains refused, with why, until one of their batches is chained
        self.newest_written: str | None = None  # the ts_key of the newest entry written (audit.newest)

    async def append(self, entries: list[Document], *, attempts: int = 3) -> list[Document]:
        """Append entries (in source order per chain) and return them; records already audited are skipped.

        A batch that raced another writer of one of its chains is re-chained on the new heads.
        """
        for attempt in range(1, attempts + 1):
            try:
                return await self._append_once([dict(entry) for entry in entries])
            except (HeadMoved, DuplicateKeyError, BulkWriteError):
                if attempt == attempts:
                    raise
        return []

    async def _append_once(self, entries: list[Document]) -> list[Document]:
        """One attempt of :meth:`append`.

        An entry's ``_id`` is its record's identity (position and content), so a redelivered
        record is found by id. Only records at or before the head's last offset can be
        redeliveries (a partition is consumed in order), so only those are looked up; after a
        broker restart, offsets start again below the head and are looked up until they pass it.
        """
        by_chain: dict[str, list[Document]] = defaultdict(list)
        for entry in entries:
            by_chain[entry["chain"]].append(entry)
        heads = {doc["_id"]: doc async for doc in self._heads.find({"_id": {"$in": list(by_chain)}})}
        maybe_seen = [
            entry["_id"]
            for chain, items in by_chain.items()
            for entry in items
            if entry["offset"] <= heads.get(chain, {}).get("offset", -1)
        ]
        seen = set(await find_by_ids(self._log, maybe_seen, projection={"_id": 1})) if maybe_seen else set()
        fresh: list[Document] = []
        head_updates: list[UpdateOne] = []
        tails: dict[str, Tail] = {}
        for chain, items in by_chain.items():
            head = tail = self._trusted(chain, heads.get(chain))
            for entry in sorted(items, key=lambda e: e["offset"]):
                if entry["_id"] in seen:
                    continue  # redelivered: already in the chain
                seen.add(entry["_id"])
                tail = extend(tail, entry, retention=self._retention.get(entry["topic"]))
                if must_be_signed(tail.seq):
                    sign_entry(self._signer, entry)
                fresh.append(entry)
            tails[chain] = tail
            if tail.seq != head.seq:
                # The head's seq is the condition: a second writer on this chain (a rebalance
                # mid-batch) fails the transaction instead of forking the chain.
                head_updates.append(
                    UpdateOne(
                        {"_id": chain, "seq": head.seq},
                        {"$set": tail.head(self._signer, chain), "$unset": {"mac": ""}},
                        upsert=head.seq == 0,
                    )
                )
        if not fresh:
            return []
        records = [{"_id": entry["_id"]} | entry.pop(RECORD) for entry in fresh if RECORD in entry]

        async def write(session: AsyncClientSession) -> None:
            await self._log.insert_many(fresh, ordered=False, session=session)
            if records:  # an event's record, kept beside its entry (evidence bundles)
                await self._records.insert_many(records, ordered=False, session=session)
            result = await self._heads.bulk_write(head_updates, session=session)
            if result.matched_count + result.upserted_count != len(head_updates):
                raise HeadMoved("another writer appended to a chain of this batch")

        async with self._client.start_session() as session:
            await session.with_transaction(write)
        self.newest_written = max(self.newest_written or "", *(entry["ts_key"] for entry in fresh))
        self._tails.update(tails)
        for chain in tails:
            self._refused.pop(chain, None)
        return fresh

    def _trusted(self, chain: str, head: Document | None) -> Tail:
        """The tail ``head`` states, if the service may extend it; else raise :class:`ChainRefused`."""
        problem = self._distrust(chain, head)
        if problem is not None:
            self._refuse(chain, problem)
        tail = Tail.of(head)
        self._tails[chain] = tail
        return tail

    def _distrust(self, chain: str, head: Document | None) -> str | None:
        """Why the service may not extend ``head``; ``None``: it may."""
        known = self._tails.get(chain)
        if head is None:
            return None if known is None else "head deleted"
        if "sig" not in head:
            return "head is not signed (a legacy head is migrated at start, never after)"
        if not self._verifier.head_ok(chain, head):
            return "head's signature does not verify (head edited or forged)"
        return None if known is None else _contradiction(known, Tail.of(head))

    def _refuse(self, chain: str, problem: str) -> None:
        self._refused[chain] = problem
        topic, _, partition = chain.rpartition(":")
        metrics.CHAINS_REFUSED.labels(topic, partition).inc()
        log.error("audit_chain_refused", chain=chain, problem=problem)
        raise ChainRefused(f"audit chain {chain} not extended: {problem}")

    def refusals(self) -> dict[str, str]:
        """The chains refused since their last append, with why."""
        return dict(self._refused)

    async def ready(self) -> None:
        """Readiness check: fails while a chain is refused, naming it; one whose head was restored is cleared."""
        if self._refused:
            heads = {doc["_id"]: doc async for doc in self._heads.find({"_id": {"$in": sorted(self._refused)}})}
            for chain in list(self._refused):
                if self._distrust(chain, heads.get(chain)) is None:
                    del self._refused[chain]
        if self._refused:
            raise ChainRefused("; ".join(f"{chain}: {why}" for chain, why in sorted(self._refused.items())))

    async def chain_lengths(self) -> dict[str, int]:
        """Entries in each chain (``topic:partition``), from the heads."""
        return {doc["_id"]: doc["seq"] async for doc in self._heads.find({}, {"seq": 1})}


def _contradiction(known: Tail, stored: Tail) -> str | None:
    """Why a validly signed ``stored`` head cannot follow ``known`` (what this process last saw); ``None``: it can.

    Another replica may have extended the chain since (a rebalance): a signed head further on is
    fine. An older one, another at the same seq, or another migration point, is a head put back.
    """
    if stored.seq < known.seq:
        return f"head went back from seq {known.seq} to {stored.seq} (an older signed head put back)"
    if stored.seq == known.seq and stored.hash != known.hash:
        return f"head at seq {known.seq} changed its hash"
    if (stored.anchor_seq, stored.anchor_hash) != (known.anchor_seq, known.anchor_hash):
        return "head's migration point changed"
    if known.expiring_since is not None and stored.expiring_since != known.expiring_since:
        return "head's first expiring seq changed"
    return None


class ChainRefused(Exception):
    """A chain's stored head cannot be trusted: the service does not sign past it."""


class HeadMoved(Exception):
    """A chain's head changed under this batch; the batch is retried against the new head."""
