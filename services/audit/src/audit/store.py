"""Appending entries to their chains in MongoDB, exactly once per source record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import timedelta

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from audit.links import Tail, extend, must_be_signed, sign_entry
from audit.signing import SigningKey
from shared.chassis.mongo import AUDIT_HEADS, AUDIT_LOG, find_by_ids
from shared.contract.documents import Document


class AuditStore:
    """Chains entries onto their heads and commits entries and heads in one transaction.

    Entries of a topic in ``retention`` (the access topic) expire that long after they were
    received (:func:`audit.links.extend`); every other entry is kept for ever. The new heads, and
    every entry at a signed seq (:func:`audit.links.must_be_signed`), are signed with ``signer``.
    """

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: AsyncDatabase[Document],
        *,
        signer: SigningKey,
        retention: Mapping[str, timedelta] | None = None,
    ) -> None:
        self._client, self._log, self._heads, self._signer = client, db[AUDIT_LOG], db[AUDIT_HEADS], signer
        self._retention = dict(retention or {})

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
        for chain, items in by_chain.items():
            if chain in heads and "sig" not in heads[chain]:
                raise NotMigrated(f"chain {chain} has a legacy head: the service migrates it at start")
            head = tail = Tail.of(heads.get(chain))
            for entry in sorted(items, key=lambda e: e["offset"]):
                if entry["_id"] in seen:
                    continue  # redelivered: already in the chain
                seen.add(entry["_id"])
                tail = extend(tail, entry, retention=self._retention.get(entry["topic"]))
                if must_be_signed(tail.seq):
                    sign_entry(self._signer, entry)
                fresh.append(entry)
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

        async def write(session: AsyncClientSession) -> None:
            await self._log.insert_many(fresh, ordered=False, session=session)
            result = await self._heads.bulk_write(head_updates, session=session)
            if result.matched_count + result.upserted_count != len(head_updates):
                raise HeadMoved("another writer appended to a chain of this batch")

        async with self._client.start_session() as session:
            await session.with_transaction(write)
        return fresh

    async def chain_lengths(self) -> dict[str, int]:
        """Entries in each chain (``topic:partition``), from the heads."""
        return {doc["_id"]: doc["seq"] async for doc in self._heads.find({}, {"seq": 1})}


class NotMigrated(Exception):
    """A chain's head is a legacy (MAC'd) one: :func:`audit.migration.migrate` re-anchors it first."""


class HeadMoved(Exception):
    """A chain's head changed under this batch; the batch is retried against the new head."""
