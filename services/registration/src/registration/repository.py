"""Storage port of the registration service: a MongoDB implementation and an in-memory fake."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pymongo import DeleteMany, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ClientBulkWriteException, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from registration.changes import Changes, ModelChange
from registration.deployments import InMemoryDeployedEnvironments, MongoDeployedEnvironments
from registration.known_models import KnownModels
from registration.storage import (
    DEPLOYED_ENVIRONMENTS,
    MODEL_VERSIONS,
    MODELS,
    OUTBOX,
    RELAY_CHECKPOINTS,
    SHARES,
)
from registry_contract.documents import Document
from shared.chassis.mongo import find_by_ids, is_duplicate_key
from shared.outbox.log import MongoOutboxLog
from shared.outbox.memory import InMemoryOutboxLog
from shared.outbox.rows import OutboxLog

ClientWrite = InsertOne[Document] | ReplaceOne[Document] | UpdateOne | DeleteMany

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.database import AsyncDatabase


class ConcurrentWrite(Exception):
    """A unique index refused the batch (duplicate, redelivery or another writer): re-run it carefully."""


class Repository(OutboxLog, Protocol):
    """What the command handlers and the outbox relay need from storage."""

    writer: str
    known_models: KnownModels  # models this process has read or committed: a registration need not read them

    async def outcomes_of(self, command_keys: Sequence[str]) -> dict[str, Document]:
        """Outbox rows of commands already handled, by command key (team-scoped id)."""
        ...

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        """Versions by id, deleted ones as their tombstones (``deleted: True``)."""
        ...

    async def models_by_id(self, model_ids: Sequence[str]) -> dict[str, Document]:
        """Models by id."""
        ...

    async def deployments_of(self, version_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Where versions run, ``{environment: status}`` by version id, as the tracker's events told."""
        ...

    async def commit(self, changes: Changes) -> None:
        """Write a batch atomically, numbering its outbox rows after every earlier commit of this writer."""
        ...


def _lit(value: Any) -> dict[str, Any]:
    return {"$literal": value}


def model_pipeline(change: ModelChange) -> list[dict[str, Any]]:
    """:meth:`ModelChange.apply` as an update pipeline, so no read precedes the write."""
    base: dict[str, Any] = {key: _lit(value) for key, value in change.identity().items() if key != "_id"}
    base |= {
        "created_at": {"$ifNull": ["$created_at", _lit(change.now)]},
        "readers": {
            "$setUnion": [
                {"$setDifference": [{"$ifNull": ["$readers", [change.team]]}, _lit(sorted(change.remove_readers))]},
                _lit(sorted(change.add_readers | {change.team})),
            ]
        },
    }
    stages: list[dict[str, Any]] = [{"$set": base}]
    if change.fields:
        stages.append({"$set": {k: _lit(v) for k, v in change.fields.items()}})
    return stages


class MongoRepository(MongoOutboxLog):
    """The registration collections in MongoDB; each batch commits in one transaction."""

    def __init__(self, client: AsyncMongoClient[Document], db: AsyncDatabase[Document], *, writer: str) -> None:
        super().__init__(db[OUTBOX], db[RELAY_CHECKPOINTS], writer=writer)
        self._client = client
        # A deleted version's tombstone replaces it in the versions collection: the unique _id
        # refuses its number again, so a registration reads nothing first.
        self._models, self._versions, self._shares = db[MODELS], db[MODEL_VERSIONS], db[SHARES]
        self._models_committed = self._models.with_options(read_concern=ReadConcern("majority"))
        self.deployments = MongoDeployedEnvironments(db[DEPLOYED_ENVIRONMENTS])
        self.known_models = KnownModels()

    async def outcomes_of(self, command_keys: Sequence[str]) -> dict[str, Document]:
        return await find_by_ids(self._outbox, command_keys, field="command_key")

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        return await find_by_ids(self._versions, version_ids)

    async def models_by_id(self, model_ids: Sequence[str]) -> dict[str, Document]:
        # Majority-committed only: a model read here is remembered as stored (registration.known_models),
        # and one another writer's failover later rolled back would stay "stored" to this process.
        return await find_by_ids(self._models_committed, model_ids)

    async def deployments_of(self, version_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return await self.deployments.of(version_ids)

    def _writes(self, changes: Changes) -> list[ClientWrite]:
        """Every write of a batch, in order, as one ``bulkWrite`` across the collections.

        One command where there were two or more (a version and its outbox row): each command is a
        round trip inside the transaction, on the request's path.
        """
        versions, models, shares = self._versions.full_name, self._models.full_name, self._shares.full_name
        writes: list[ClientWrite] = [InsertOne(version, namespace=versions) for version in changes.new_versions]
        writes += [
            UpdateOne({"_id": vid}, {"$set": fields}, namespace=versions)
            for vid, fields in changes.version_sets.items()
        ]
        writes += [
            UpdateOne({"_id": mid}, model_pipeline(change), upsert=True, namespace=models)
            for mid, change in changes.models.items()
            if change.writes()
        ]
        writes += [
            ReplaceOne({"_id": share["_id"]}, share, upsert=True, namespace=shares) for share in changes.shares_added
        ]
        if changes.shares_removed:
            writes.append(DeleteMany({"_id": {"$in": changes.shares_removed}}, namespace=shares))
        writes += [ReplaceOne({"_id": doc["_id"]}, doc, namespace=versions) for doc in changes.deleted_versions]
        writes += [InsertOne(row, namespace=self._outbox.full_name) for row in changes.outbox]
        return writes

    async def commit(self, changes: Changes) -> None:
        async def write(session: AsyncClientSession) -> None:  # the outbox rows are numbered by now
            try:
                await self._client.bulk_write(self._writes(changes), session=session)
            except ClientBulkWriteException as exc:
                # A failure of the command itself (a write conflict, a lost connection) is wrapped,
                # its TransientTransactionError label with it: unwrapped, with_transaction retries
                # it as it did the single-collection writes, and callers tell a transient failure.
                if isinstance(exc.error, PyMongoError):
                    raise exc.error from exc
                raise

        try:
            await self.commit_numbered(self._client, changes.outbox, write)
        except OperationFailure as exc:  # a duplicate: written in the batch's bulkWrite, or on its own
            if is_duplicate_key(exc):
                raise ConcurrentWrite(str(exc)) from None
            raise


class InMemoryRepository(InMemoryOutboxLog):
    """A fake with the same behaviour, for unit tests of the handlers."""

    def __init__(self, writer: str = "memory") -> None:
        super().__init__(writer)
        self.models: dict[str, Document] = {}
        self.versions: dict[str, Document] = {}
        self.shares: dict[str, Document] = {}
        self.deployments = InMemoryDeployedEnvironments()
        self.known_models = KnownModels()

    async def outcomes_of(self, command_keys: Sequence[str]) -> dict[str, Document]:
        wanted = set(command_keys)
        return {d["command_key"]: copy.deepcopy(d) for d in self.outbox.values() if d.get("command_key") in wanted}

    async def versions_by_id(self, version_ids: Sequence[str]) -> dict[str, Document]:
        return {vid: copy.deepcopy(self.versions[vid]) for vid in version_ids if vid in self.versions}

    async def models_by_id(self, model_ids: Sequence[str]) -> dict[str, Document]:
        return {mid: copy.deepcopy(self.models[mid]) for mid in model_ids if mid in self.models}

    async def deployments_of(self, version_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return await self.deployments.of(version_ids)

    async def commit(self, changes: Changes) -> None:
        handled = {d.get("command_key") for d in self.outbox.values()}
        refs = {(m["team"], m["name"]): mid for mid, m in self.models.items()}
        if (
            any(v["_id"] in self.versions for v in changes.new_versions)
            or any(d.get("command_key") in handled for d in changes.outbox)
            or any(refs.get((c.team, c.name), c.model_id) != c.model_id for c in changes.models.values())
        ):
            raise ConcurrentWrite("duplicate key")
        async with self.numbering.lock:
            for version in changes.new_versions:
                self.versions[version["_id"]] = copy.deepcopy(version)
            for version_id, fields in changes.version_sets.items():
                self.versions[version_id].update(copy.deepcopy(fields))
            for model_id, change in changes.models.items():
                if change.writes():
                    self.models[model_id] = copy.deepcopy(change.apply(self.models.get(model_id)))
            for share in changes.shares_added:
                self.shares[share["_id"]] = copy.deepcopy(share)
            for share_id in changes.shares_removed:
                self.shares.pop(share_id, None)
            for tombstone in changes.deleted_versions:
                self.versions[tombstone["_id"]] = copy.deepcopy(tombstone)
            self.add_rows(changes.outbox)
