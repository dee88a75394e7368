"""Storage of the tracker: report history, its known versions' deployment state, and its outbox."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.handlers import Changes
from deploy_tracker.storage import DEPLOY_OUTBOX, DEPLOY_RELAY_CHECKPOINTS, DEPLOYMENTS, KNOWN_VERSIONS
from registry_contract.documents import Document
from shared.chassis.mongo import find_by_ids
from shared.outbox.log import MongoOutboxLog


class MongoRepository(MongoOutboxLog):
    """Writes only what the tracker owns: ``deployments``, ``known_versions`` and its outbox."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document], *, writer: str) -> None:
        super().__init__(db[DEPLOY_OUTBOX], db[DEPLOY_RELAY_CHECKPOINTS], writer=writer)
        self._client, self._history, self._versions = client, db[DEPLOYMENTS], db[KNOWN_VERSIONS]

    async def seen(self, report_keys: Sequence[str]) -> set[str]:
        return set(await find_by_ids(self._history, report_keys, projection={"_id": 1}))

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        return await find_by_ids(self._versions, version_ids)

    async def events_after(self, after: int, limit: int) -> list[Document]:
        """Outbox rows after ``after`` in position order, but those the broker refused (never published)."""
        query = {"position": {"$gt": after}, "parked_reason": {"$exists": False}}
        return await self._outbox.find(query).sort("position", 1).limit(limit).to_list()

    async def commit(self, changes: Changes) -> None:
        async def write(session: AsyncClientSession) -> None:
            changes.stamp_revisions()  # the rows are numbered by now
            await self._history.insert_many(changes.history, session=session)
            # A version learned from registration is kept unless an event brought it meanwhile.
            updates = [_insert_if_new(row) for row in changes.learned]
            updates += [UpdateOne({"_id": vid}, {"$set": fields}) for vid, fields in changes.version_sets.items()]
            # An approval registration confirmed, unless an event at least as new is already there.
            updates += [
                UpdateOne({"_id": vid, "revision": {"$lt": fields["revision"]}}, {"$set": fields})
                for vid, fields in changes.approvals.items()
            ]
            # Whether a version was signed, registration confirmed, where the table did not know.
            updates += [
                UpdateOne({"_id": vid, "provenance_verified": None}, {"$set": fields})
                for vid, fields in changes.provenance.items()
            ]
            if updates:
                await self._versions.bulk_write(updates, session=session)
            if changes.outbox:
                await self._outbox.insert_many(changes.outbox, session=session)

        await self.commit_numbered(self._client, changes.outbox, write)


def _insert_if_new(row: Document) -> UpdateOne:
    return UpdateOne({"_id": row["_id"]}, {"$setOnInsert": {k: v for k, v in row.items() if k != "_id"}}, upsert=True)
