"""Storage of the tracker: report history, the status fields of versions, and its outbox."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.handlers import Changes
from shared.chassis.mongo import (
    DEPLOY_OUTBOX,
    DEPLOY_RELAY_CHECKPOINTS,
    DEPLOYMENTS,
    MODEL_VERSIONS,
    MODELS,
    find_by_ids,
)
from shared.contract.documents import Document
from shared.outbox.log import MongoOutboxLog


class MongoRepository(MongoOutboxLog):
    """Writes only what the tracker owns: ``deployments``, its outbox, ``status``/``environments``, ``feed_key``."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document], *, writer: str) -> None:
        super().__init__(db[DEPLOY_OUTBOX], db[DEPLOY_RELAY_CHECKPOINTS], writer=writer)
        self._client, self._history, self._versions = client, db[DEPLOYMENTS], db[MODEL_VERSIONS]
        self._models = db[MODELS]

    async def seen(self, report_keys: Sequence[str]) -> set[str]:
        return set(await find_by_ids(self._history, report_keys, projection={"_id": 1}))

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        return await find_by_ids(self._versions, version_ids)

    async def commit(self, changes: Changes) -> None:
        async def write(session: AsyncClientSession) -> None:
            await self._history.insert_many(changes.history, session=session)
            if changes.version_sets:
                updates = [UpdateOne({"_id": vid}, {"$set": fields}) for vid, fields in changes.version_sets.items()]
                await self._versions.bulk_write(updates, session=session)
            if changes.feed_keys:
                moves = [UpdateOne({"_id": mid}, {"$set": {"feed_key": key}}) for mid, key in changes.feed_keys.items()]
                await self._models.bulk_write(moves, session=session)
            if changes.outbox:
                await self._outbox.insert_many(changes.outbox, session=session)

        await self.commit_numbered(self._client, changes.outbox, write)
