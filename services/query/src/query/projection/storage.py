"""The read model persisted in the query service's own database, so a restart resumes instead of replaying.

Write-behind: what changed since the last flush (:attr:`ReadModel.dirty_models`,
:attr:`ReadModel.dirty_versions`, the history and report rows appended since) is written in bulk,
with the checkpoint (the Kafka offsets consumed and the highest revision applied per owner) last.
A crash between a flush's writes loses nothing: the events after the checkpoint are applied again
at start, and idempotent upserts plus the revisions make that harmless.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pymongo import ASCENDING, DeleteOne, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from query.projection.model import ReadModel
from registry_contract.documents import Document
from registry_contract.ids import version_id
from shared.chassis.mongo import insert_new

PROJECTION_MODELS = "projection_models"  # {_id: model id, doc: the model document or None, revisions}
PROJECTION_VERSIONS = "projection_versions"  # the version documents as they are
PROJECTION_HISTORY = "projection_history"  # {_id: model id + event id, row: the history row}
PROJECTION_REPORTS = "projection_reports"  # {_id: model id + report id, row: the report row}
PROJECTION_STATE = "projection_state"  # one document: the checkpoint
COLLECTIONS = (PROJECTION_MODELS, PROJECTION_VERSIONS, PROJECTION_HISTORY, PROJECTION_REPORTS, PROJECTION_STATE)
INDEXES: dict[str, list[IndexModel]] = {
    PROJECTION_MODELS: [],
    PROJECTION_VERSIONS: [],
    PROJECTION_HISTORY: [IndexModel([("model_id", ASCENDING), ("seq", ASCENDING)], name="model_seq")],
    PROJECTION_REPORTS: [IndexModel([("model_id", ASCENDING), ("seq", ASCENDING)], name="model_seq")],
    PROJECTION_STATE: [],
}
CHECKPOINT_ID = "checkpoint"
# Operations per bulk write: the driver encodes a whole batch on the event loop before sending it
# (1,000 versions blocked reads for 50-180 ms while the read model was catching up).
WRITE_BATCH = 200


@dataclass
class Checkpoint:
    """How far the persisted read model got: Kafka offsets by partition, owners' revisions by source."""

    offsets: dict[int, int] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)


@dataclass
class Rows:
    """One flush's writes, as plain data."""

    upserts: dict[str, list[Document]] = field(default_factory=dict)  # collection -> whole documents
    deletes: dict[str, list[str]] = field(default_factory=dict)  # collection -> ids

    def __len__(self) -> int:
        return sum(map(len, self.upserts.values())) + sum(map(len, self.deletes.values()))

    def then(self, newer: Rows) -> Rows:
        """These rows followed by ``newer``, as one write: the newer document of an id wins."""
        upserts: dict[str, dict[str, Document]] = {}
        deletes: dict[str, set[str]] = {}
        for rows in (self, newer):  # one take never both writes and deletes an id: the order is the takes'
            for name, docs in rows.upserts.items():
                for doc in docs:
                    upserts.setdefault(name, {})[doc["_id"]] = doc
                    deletes.get(name, set()).discard(doc["_id"])
            for name, ids in rows.deletes.items():
                for doc_id in ids:
                    upserts.get(name, {}).pop(doc_id, None)
                    deletes.setdefault(name, set()).add(doc_id)
        return Rows({n: list(d.values()) for n, d in upserts.items()}, {n: sorted(i) for n, i in deletes.items()})


class Flushed:
    """How many history and report rows of each model are already persisted (they are only appended)."""

    def __init__(self) -> None:
        self.history: dict[str, int] = {}
        self.reports: dict[str, int] = {}

    def take(self, model: ReadModel, *, everything: bool = False) -> Rows:
        """The rows changed since the last take (all of them with ``everything``), and clear the marks."""
        model_ids = set(model.models) | {mid for _, mid in model.revisions} if everything else model.dirty_models
        version_ids = set(model.version_owner) if everything else model.dirty_versions
        if everything:
            self.history, self.reports = {}, {}
        for mid in model.rewritten:  # rows came in before others: write the model's rows again
            self.history.pop(mid, None)
            self.reports.pop(mid, None)
        rows = Rows(upserts={name: [] for name in COLLECTIONS[:4]}, deletes={PROJECTION_VERSIONS: []})
        # Each model's revisions are looked up by source (a handful), not found by walking every
        # model's: that walk made a flush of a few dozen models take tens of ms at 10,000 models.
        sources = list(model.positions)
        for mid in sorted(model_ids):
            revisions = {source: rev for source in sources if (rev := model.revisions.get((source, mid))) is not None}
            rows.upserts[PROJECTION_MODELS].append({"_id": mid, "doc": model.models.get(mid), "revisions": revisions})
            rows.upserts[PROJECTION_HISTORY] += _appended(model.history.get(mid, []), mid, self.history)
            rows.upserts[PROJECTION_REPORTS] += _appended(model.reports.get(mid, []), mid, self.reports)
        for vid in sorted(version_ids):
            found = model.version(vid)
            if found is None:
                rows.deletes[PROJECTION_VERSIONS].append(vid)
            else:
                rows.upserts[PROJECTION_VERSIONS].append(found)
        model.dirty_models, model.dirty_versions, model.rewritten = set(), set(), set()
        return rows


def _appended(rows: list[Document], model_id: str, done: dict[str, int]) -> list[Document]:
    start = done.get(model_id, 0)
    done[model_id] = len(rows)
    return [
        {"_id": f"{model_id}:{row['_id']}", "model_id": model_id, "seq": seq, "row": row}
        for seq, row in enumerate(rows[start:], start)
    ]


def restore(
    models: Iterable[Document], versions: Iterable[Document], history: Iterable[Document], reports: Iterable[Document]
) -> ReadModel:
    """The read model from its persisted rows (history and reports in ``seq`` order)."""
    model = ReadModel()
    for row in models:
        mid = row["_id"]
        for source, revision in (row.get("revisions") or {}).items():
            model.revisions[(source, mid)] = revision
            model.positions[source] = max(model.positions.get(source, 0), revision)
        if (doc := row.get("doc")) is not None:
            model.models[mid] = doc
            model.by_name[(doc["team"], doc["name"])] = mid
    for doc in versions:
        model.versions.setdefault(doc["model_id"], {})[doc["_id"]] = doc
        model.version_owner[doc["_id"]] = doc["model_id"]
        if parent := doc.get("parent"):
            child_of = version_id(parent["team"], parent["name"], parent["version"])
            model.children.setdefault(child_of, set()).add(doc["_id"])
    for target, rows in ((model.history, history), (model.reports, reports)):
        for row in rows:
            target.setdefault(row["model_id"], []).append(row["row"])
    return model


class ProjectionStore(Protocol):
    """Where the read model persists: its rows and its checkpoint."""

    async def load(self) -> tuple[ReadModel, Checkpoint]:
        """The persisted read model and checkpoint (empty ones the first time)."""
        ...

    async def write(self, rows: Rows, checkpoint: Checkpoint) -> None:
        """Write ``rows``, then the checkpoint."""
        ...

    async def clear(self) -> None:
        """Forget everything (before a rebuild writes the new model whole)."""
        ...


class MongoProjectionStore:
    """The read model in the query service's database."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def load(self) -> tuple[ReadModel, Checkpoint]:
        db = self._db
        model = restore(
            await db[PROJECTION_MODELS].find({}).to_list(),
            await db[PROJECTION_VERSIONS].find({}).to_list(),
            await db[PROJECTION_HISTORY].find({}).sort([("model_id", 1), ("seq", 1)]).to_list(),
            await db[PROJECTION_REPORTS].find({}).sort([("model_id", 1), ("seq", 1)]).to_list(),
        )
        state = await db[PROJECTION_STATE].find_one({"_id": CHECKPOINT_ID}) or {}
        offsets = {int(p): int(o) for p, o in (state.get("offsets") or {}).items()}
        positions = {str(s): int(p) for s, p in (state.get("positions") or {}).items()}
        for source, position in model.positions.items():  # rows may have got further than the checkpoint
            positions[source] = max(positions.get(source, 0), position)
        return model, Checkpoint(offsets, positions)

    async def write(self, rows: Rows, checkpoint: Checkpoint) -> None:
        for name, docs in rows.upserts.items():
            for start in range(0, len(docs), WRITE_BATCH):
                await self._insert_or_replace(name, docs[start : start + WRITE_BATCH])
        for name, ids in rows.deletes.items():
            await self._bulk(name, [DeleteOne({"_id": i}) for i in ids])
        state = {
            "_id": CHECKPOINT_ID,
            "offsets": {str(p): o for p, o in checkpoint.offsets.items()},
            "positions": dict(checkpoint.positions),
        }
        await self._db[PROJECTION_STATE].replace_one({"_id": CHECKPOINT_ID}, state, upsert=True)

    async def _insert_or_replace(self, name: str, docs: list[Document]) -> None:
        """Insert ``docs``; replace those whose id is already stored.

        Most of a flush is new: versions just registered and history rows, which are only appended.
        Upserts were a commit per document in the embedded stand-in, most of the shared database
        server's work for a registration (2.2 of its 5.4 ms of CPU). What already exists (a model's
        document, a changed version, rows written again after a restart) is refused by the insert
        and replaced after it, in order, so the newest document wins.
        """
        if refused := await insert_new(self._db[name], docs):  # at most WRITE_BATCH: one bulk write
            await self._bulk(name, [ReplaceOne({"_id": docs[i]["_id"]}, docs[i], upsert=True) for i in refused])

    async def _bulk(self, name: str, ops: list[Any]) -> None:
        for start in range(0, len(ops), WRITE_BATCH):
            await self._db[name].bulk_write(ops[start : start + WRITE_BATCH], ordered=False)

    async def clear(self) -> None:
        for name in COLLECTIONS:
            await self._db[name].delete_many({})


class MemoryProjectionStore:
    """The same store in memory (unit tests)."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, Document]] = {name: {} for name in COLLECTIONS}
        self.checkpoint = Checkpoint()

    async def load(self) -> tuple[ReadModel, Checkpoint]:
        def rows(name: str) -> list[Document]:
            return sorted(c[name].values(), key=lambda r: (r["model_id"], r["seq"]))

        c = copy.deepcopy(self.collections)
        model = restore(c[PROJECTION_MODELS].values(), c[PROJECTION_VERSIONS].values(), *map(rows, COLLECTIONS[2:4]))
        return model, Checkpoint(dict(self.checkpoint.offsets), dict(self.checkpoint.positions))

    async def write(self, rows: Rows, checkpoint: Checkpoint) -> None:
        for name, docs in rows.upserts.items():
            self.collections[name].update({doc["_id"]: copy.deepcopy(doc) for doc in docs})
        for name, ids in rows.deletes.items():
            for i in ids:
                self.collections[name].pop(i, None)
        self.checkpoint = Checkpoint(dict(checkpoint.offsets), dict(checkpoint.positions))

    async def clear(self) -> None:
        self.collections = {name: {} for name in COLLECTIONS}
        self.checkpoint = Checkpoint()
