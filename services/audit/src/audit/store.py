"""Appending entries to their chains in MongoDB, exactly once per source record."""

from __future__ import annotations

from collections import defaultdict

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from shared.auditchain import GENESIS, link
from shared.mongo import AUDIT_HEADS, AUDIT_LOG, Document


class AuditStore:
    """Chains entries onto their heads and commits entries and heads in one transaction."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document]) -> None:
        self._client, self._log, self._heads = client, db[AUDIT_LOG], db[AUDIT_HEADS]

    async def append(self, entries: list[Document]) -> list[Document]:
        """Append entries (in source order per chain) and return them; records already audited are skipped."""
        by_chain: dict[str, list[Document]] = defaultdict(list)
        for entry in entries:
            by_chain[entry["chain"]].append(entry)
        heads = {doc["_id"]: doc async for doc in self._heads.find({"_id": {"$in": list(by_chain)}})}
        fresh: list[Document] = []
        head_updates: list[UpdateOne] = []
        for chain, items in by_chain.items():
            head = heads.get(chain, {"seq": 0, "hash": GENESIS, "offset": -1})
            seq, prev_hash, offset = head["seq"], head["hash"], head["offset"]
            for entry in sorted(items, key=lambda e: e["offset"]):
                if entry["offset"] <= offset:
                    continue  # redelivered after a restart: already in the chain
                seq += 1
                entry["seq"], entry["prev_hash"] = seq, prev_hash
                entry["hash"] = prev_hash = link(prev_hash, entry)
                offset = entry["offset"]
                fresh.append(entry)
            if seq != head["seq"]:
                head_updates.append(
                    UpdateOne({"_id": chain}, {"$set": {"seq": seq, "hash": prev_hash, "offset": offset}}, upsert=True)
                )
        if not fresh:
            return []

        async def write(session: AsyncClientSession) -> None:
            await self._log.insert_many(fresh, ordered=False, session=session)
            await self._heads.bulk_write(head_updates, session=session)

        async with self._client.start_session() as session:
            await session.with_transaction(write)
        return fresh

    async def chain_lengths(self) -> dict[str, int]:
        """Entries in each chain (``topic:partition``), from the heads."""
        return {doc["_id"]: doc["seq"] async for doc in self._heads.find({}, {"seq": 1})}
