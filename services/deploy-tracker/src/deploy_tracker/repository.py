"""Storage of the tracker: report history, the status fields of versions, and its outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.handlers import Changes
from shared.mongo import DEPLOY_OUTBOX, DEPLOY_RELAY_CHECKPOINTS, DEPLOYMENTS, MODEL_VERSIONS, Document
from shared.outbox import MongoOutboxLog, Numbering

CHUNK = 100


class MongoRepository:
    """Writes only what the tracker owns: ``deployments``, its outbox, and ``status``/``environments``."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document], *, writer: str) -> None:
        self._client, self.writer = client, writer
        self._history, self._versions, self._outbox = db[DEPLOYMENTS], db[MODEL_VERSIONS], db[DEPLOY_OUTBOX]
        self._log = MongoOutboxLog(self._outbox, db[DEPLOY_RELAY_CHECKPOINTS], writer=writer)
        self._numbering = Numbering()

    async def seen(self, report_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(report_ids), CHUNK):
            async for doc in self._history.find({"_id": {"$in": list(report_ids[i : i + CHUNK])}}, {"_id": 1}):
                found.add(doc["_id"])
        return found

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        found: dict[str, Document] = {}
        for i in range(0, len(version_ids), CHUNK):
            async for doc in self._versions.find({"_id": {"$in": list(version_ids[i : i + CHUNK])}}):
                found[doc["_id"]] = doc
        return found

    async def commit(self, changes: Changes) -> None:
        async def write(session: AsyncClientSession) -> None:
            await self._history.insert_many(changes.history, session=session)
            if changes.version_sets:
                updates = [UpdateOne({"_id": vid}, {"$set": fields}) for vid, fields in changes.version_sets.items()]
                await self._versions.bulk_write(updates, session=session)
            if changes.outbox:
                await self._outbox.insert_many(changes.outbox, session=session)

        async with self._numbering.lock:
            before = self._numbering.take(changes.outbox, self.writer)
            try:
                async with self._client.start_session() as session:
                    await session.with_transaction(write)
            except BaseException:
                self._numbering.give_back(before)
                raise

    async def register_writer(self) -> None:
        await self._log.register_writer()

    async def pending(self, writer: str, limit: int) -> list[Document]:
        return await self._log.pending(writer, limit)

    async def advance(self, writer: str, seq: int) -> None:
        await self._log.advance(writer, seq)

    async def stale_writers(self, idle: timedelta) -> list[str]:
        return await self._log.stale_writers(idle)

    async def forget_writer(self, writer: str) -> None:
        await self._log.forget_writer(writer)
