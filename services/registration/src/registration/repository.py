"""Storage port of the registration service: a MongoDB implementation and an in-memory fake."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from shared.mongo import MODEL_VERSIONS, MODELS, OUTBOX, Document

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.database import AsyncDatabase

    from registration.handlers import Changes

DUPLICATE_KEY = 11000


class ConcurrentWrite(Exception):
    """Another writer changed what this batch read; the batch must be reloaded and retried."""


class Repository(Protocol):
    """What the command handlers and the outbox relay need from storage."""

    async def outcomes_of(self, command_ids: Sequence[str]) -> dict[str, Document]:
        """Outbox rows of commands already handled, by command id."""
        ...

    async def models_by_ref(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        """Models by (team, name)."""
        ...

    async def versions_by_key(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        """Versions by (model id, precedence key)."""
        ...

    async def commit(self, changes: Changes) -> None:
        """Write every change of a batch atomically, or raise :class:`ConcurrentWrite`."""
        ...

    async def unsent(self, limit: int) -> list[Document]:
        """Outbox rows not yet published, oldest first."""
        ...

    async def mark_sent(self, event_ids: Sequence[str]) -> None:
        """Record that these outbox rows were published."""
        ...


class MongoRepository:
    """The registration collections in MongoDB; each batch commits in one transaction."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document]) -> None:
        self._client, self._db = client, db
        self._models, self._versions, self._outbox = db[MODELS], db[MODEL_VERSIONS], db[OUTBOX]

    async def outcomes_of(self, command_ids: Sequence[str]) -> dict[str, Document]:
        if not command_ids:
            return {}
        cursor = self._outbox.find({"causation_id": {"$in": list(command_ids)}})
        return {doc["causation_id"]: doc async for doc in cursor}

    async def models_by_ref(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        if not refs:
            return {}
        query = {"$or": [{"team": team, "name": name} for team, name in refs]}
        return {(doc["team"], doc["name"]): doc async for doc in self._models.find(query)}

    async def versions_by_key(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        if not keys:
            return {}
        query = {"$or": [{"model_id": model_id, "version_key": key} for model_id, key in keys]}
        return {(doc["model_id"], doc["version_key"]): doc async for doc in self._versions.find(query)}

    async def commit(self, changes: Changes) -> None:
        async def write(session: AsyncClientSession) -> None:
            if changes.new_models:
                await self._models.insert_many(list(changes.new_models.values()), session=session)
            model_ops = [
                UpdateOne({"_id": model_id}, {"$inc": {"version_count": count}})
                for model_id, count in changes.model_version_increments.items()
            ] + [
                # Only move the headline fields forward: a concurrent writer may have a newer one.
                UpdateOne(
                    {
                        "_id": model_id,
                        **({"latest_rank": {"$lt": fields["latest_rank"]}} if "latest_rank" in fields else {}),
                    },
                    {"$set": fields},
                )
                for model_id, fields in changes.model_sets.items()
            ]
            if model_ops:
                await self._models.bulk_write(model_ops, ordered=True, session=session)
            if changes.new_versions:
                await self._versions.insert_many(changes.new_versions, session=session)
            if changes.version_sets:
                await self._versions.bulk_write(
                    [UpdateOne({"_id": vid}, {"$set": fields}) for vid, fields in changes.version_sets.items()],
                    session=session,
                )
            await self._outbox.bulk_write([InsertOne(doc) for doc in changes.outbox], session=session)

        try:
            async with self._client.start_session() as session:
                await session.with_transaction(write)
        except (DuplicateKeyError, BulkWriteError) as exc:
            if _is_duplicate(exc):
                raise ConcurrentWrite(str(exc)) from None
            raise

    async def unsent(self, limit: int) -> list[Document]:
        return await self._outbox.find({"sent": False}).sort("position", 1).limit(limit).to_list()

    async def mark_sent(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            await self._outbox.update_many(
                {"_id": {"$in": list(event_ids)}}, {"$set": {"sent": True, "sent_at": datetime.now(UTC)}}
            )


def _is_duplicate(exc: OperationFailure) -> bool:
    if isinstance(exc, BulkWriteError):
        return any(err.get("code") == DUPLICATE_KEY for err in exc.details.get("writeErrors", []))
    return exc.code == DUPLICATE_KEY


class InMemoryRepository:
    """A fake with the same behaviour, for unit tests of the handlers."""

    def __init__(self) -> None:
        self.models: dict[str, Document] = {}
        self.versions: dict[str, Document] = {}
        self.outbox: dict[str, Document] = {}

    async def outcomes_of(self, command_ids: Sequence[str]) -> dict[str, Document]:
        wanted = set(command_ids)
        return {
            doc["causation_id"]: copy.deepcopy(doc) for doc in self.outbox.values() if doc["causation_id"] in wanted
        }

    async def models_by_ref(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        wanted = set(refs)
        return {
            (m["team"], m["name"]): copy.deepcopy(m) for m in self.models.values() if (m["team"], m["name"]) in wanted
        }

    async def versions_by_key(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Document]:
        wanted = set(keys)
        return {
            (v["model_id"], v["version_key"]): copy.deepcopy(v)
            for v in self.versions.values()
            if (v["model_id"], v["version_key"]) in wanted
        }

    async def commit(self, changes: Changes) -> None:
        taken = {(m["team"], m["name"]) for m in self.models.values()}
        keys = {(v["model_id"], v["version_key"]) for v in self.versions.values()}
        causes = {d["causation_id"] for d in self.outbox.values()}
        if (
            any((m["team"], m["name"]) in taken for m in changes.new_models.values())
            or any((v["model_id"], v["version_key"]) in keys for v in changes.new_versions)
            or any(d["causation_id"] in causes for d in changes.outbox)
        ):
            raise ConcurrentWrite("duplicate key")
        for model_id, model in changes.new_models.items():
            self.models[model_id] = copy.deepcopy(model)
        for model_id, count in changes.model_version_increments.items():
            self.models[model_id]["version_count"] = self.models[model_id].get("version_count", 0) + count
        for model_id, fields in changes.model_sets.items():
            stored = self.models[model_id]
            if "latest_rank" in fields and stored.get("latest_rank", "") >= fields["latest_rank"]:
                continue
            stored.update(copy.deepcopy(fields))
        for version in changes.new_versions:
            self.versions[version["_id"]] = copy.deepcopy(version)
        for version_id, fields in changes.version_sets.items():
            self.versions[version_id].update(copy.deepcopy(fields))
        for doc in changes.outbox:
            self.outbox[doc["_id"]] = copy.deepcopy(doc)

    async def unsent(self, limit: int) -> list[Document]:
        rows = sorted((d for d in self.outbox.values() if not d["sent"]), key=lambda d: d["position"])
        return copy.deepcopy(rows[:limit])

    async def mark_sent(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            self.outbox[event_id]["sent"] = True
