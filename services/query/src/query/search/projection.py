"""The search index as a projection of MongoDB, kept current by ``registry.events``.

Each query replica keeps its own index and reads every partition of the events topic outside
any consumer group. At start it notes the topic's end offsets, builds the index from MongoDB, then
consumes from those offsets: an event that landed during the build is applied again, which is
harmless, because applying an event means re-reading its model from MongoDB (written before the
event was published), never trusting the event's data.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo.asynchronous.database import AsyncDatabase

from query import metrics
from shared.chassis.kafka import client_options
from shared.chassis.mongo import MODEL_VERSIONS, MODELS
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import EventSigner
from shared.contract import messages
from shared.contract.documents import Document
from shared.contract.ids import model_id
from shared.contract.views import ModelVersionPublic

log = structlog.get_logger(__name__)
# Events that change what a model looks like in search or who may read it.
CHANGES = frozenset(
    {
        messages.MODEL_VERSION_REGISTERED,
        messages.MODEL_VERSION_UPDATED,
        messages.VERSION_LIFECYCLE_CHANGED,
        messages.MODEL_SHARED,
        messages.MODEL_UNSHARED,
        messages.DEPLOYMENT_STATUS_CHANGED,
        messages.ALIAS_SET,
        messages.ALIAS_REMOVED,
        messages.VERSION_APPROVAL_CHANGED,
        messages.MODEL_UPDATED,
        messages.MODEL_VERSION_DELETED,
    }
)
BUILD_BATCH = 500  # models read per round trip while building
VERSIONS_PER_MODEL = 200  # newest versions of a model that feed its search document
# What search documents and hits use of a version: everything public (the hit shows the latest
# version whole), none of the write side's bookkeeping; lineage is read only for cards.
_VERSION_FIELDS = {field: 1 for field in ModelVersionPublic.model_fields} | {"version_key": 1}


class Index(Protocol):
    """What the projection needs of the search index."""

    def upsert(self, docs: Sequence[Any]) -> None: ...
    def delete(self, model_ids: Sequence[str]) -> None: ...
    def commit(self) -> None: ...


class Documents(Protocol):
    """Turns a model and its versions into the index's document."""

    def __call__(self, model: Document, versions: list[Document]) -> Any: ...


class SearchProjection:
    """Builds the index from MongoDB, then applies every change event to it."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        index: Index,
        document: Documents,
        *,
        settings: CommonSettings,
        on_change: Callable[[set[str]], None] | None = None,
    ) -> None:
        self._models, self._versions = db[MODELS], db[MODEL_VERSIONS]
        self._index, self._document, self._settings = index, document, settings
        self._on_change = on_change  # told the ids of the models each batch of events changed
        self._signer = EventSigner.from_settings(settings)
        self.built = asyncio.Event()

    async def ready(self) -> None:
        """A readiness check: fails until the first build is complete."""
        if not self.built.is_set():
            raise RuntimeError("the search index is still being built")

    def unavailable(self, down: Mapping[str, str], *, task: str = "search-projection") -> str | None:
        """Why search must not answer now (``None`` when it may): not built yet, or ``task`` is ``down``.

        A projection that died stops applying events, so its index may still hold a model for a team
        it was unshared from; until it has been restarted, rebuilt and has settled, search refuses.
        """
        if task in down:
            return "the search index is not following changes (it is being restarted); try again shortly"
        if not self.built.is_set():
            return "the search index is being built; try again shortly"
        return None

    async def run(self) -> None:
        """Build, then follow the events topic until cancelled.

        Run again after a failure (the chassis restarts it), it rebuilds: what changed while it was
        down (an unshare, say) is read from MongoDB, and readiness fails until the rebuild is done.
        """
        self.built.clear()
        consumer = AIOKafkaConsumer(
            client_id=f"{self._settings.service_name}-search",
            enable_auto_commit=False,
            fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
            **client_options(self._settings),
        )
        await consumer.start()
        try:
            partitions = await self._assign(consumer)
            ends = await consumer.end_offsets(partitions)
            await self.build()
            for partition, offset in ends.items():
                consumer.seek(partition, offset)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1_000)
                await self.apply(record for records in batches.values() for record in records)
        finally:
            await consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        topic = self._settings.topic_events
        while not (found := consumer.partitions_for_topic(topic)):
            await consumer.topics()  # fetches metadata; the topic may not exist for a moment at start
            await asyncio.sleep(0.5)
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        return partitions

    async def build(self) -> int:
        """Index every model from MongoDB; return how many.

        Two ordered passes joined here, models by id and versions by model id, instead of a
        version query per batch of models: each pass reads its collection once, whatever its size,
        and only one model's versions are held at a time.
        """
        started, count = time.perf_counter(), 0
        versions = aiter(self._versions.find({}, _VERSION_FIELDS).sort("model_id", 1))
        pending = await anext(versions, None)
        docs: list[Any] = []
        async for model in self._models.find({}).sort("_id", 1):
            own: list[Document] = []
            while pending is not None and pending["model_id"] <= model["_id"]:
                if pending["model_id"] == model["_id"]:
                    own.append(pending)
                pending = await anext(versions, None)
            own.sort(key=lambda v: str(v.get("version_key", "")), reverse=True)
            docs.append(self._document(model, own[:VERSIONS_PER_MODEL]))
            if len(docs) == BUILD_BATCH:
                count += await self._upsert(docs)
                docs = []
        count += await self._upsert(docs)
        await asyncio.to_thread(self._index.commit)
        self.built.set()
        seconds = time.perf_counter() - started
        metrics.SEARCH_BUILD_SECONDS.set(seconds)
        log.info("search index built", models=count, seconds=round(seconds, 2))
        return count

    async def _upsert(self, docs: list[Any]) -> int:
        # The index works in Rust without the GIL: off the event loop, so reads keep flowing.
        await asyncio.to_thread(self._index.upsert, docs)
        return len(docs)

    async def apply(self, records: Iterable[Any]) -> None:
        """Re-project the models the change events among ``records`` name (each model once)."""
        changed: set[str] = set()
        for record in records:
            found = self._changed_model(record)
            if found:
                changed.add(found)
        if not changed:
            return
        models = await self._models.find({"_id": {"$in": sorted(changed)}}).to_list()
        await self._project(models)
        await asyncio.to_thread(self._index.delete, sorted(changed - {m["_id"] for m in models}))  # deleted since
        await asyncio.to_thread(self._index.commit)
        metrics.SEARCH_EVENTS_APPLIED.inc(len(changed))
        if self._on_change is not None:
            self._on_change(changed)

    def _changed_model(self, record: Any) -> str | None:
        headers = [(name, bytes(value)) for name, value in record.headers or ()]
        kind = next((value.decode(errors="replace") for name, value in headers if name == "ce_type"), None)
        if kind not in CHANGES:
            return None
        if not self._signer.verify(record.value, headers):
            # Anyone on the bus could send these: never let an unsigned record cost a read.
            metrics.SEARCH_EVENTS_IGNORED.inc()
            return None
        team, _, name = (record.key or b"").decode(errors="replace").partition("/")
        return model_id(team, name) if team and name else None

    async def _project(self, models: list[Document]) -> int:
        if not models:
            return 0
        versions: dict[str, list[Document]] = {m["_id"]: [] for m in models}
        query = {"model_id": {"$in": list(versions)}}
        async for version in self._versions.find(query, _VERSION_FIELDS).sort("version_key", -1):
            kept = versions[version["model_id"]]
            if len(kept) < VERSIONS_PER_MODEL:
                kept.append(version)
        docs = [self._document(m, versions[m["_id"]]) for m in models]
        # The index works in Rust without the GIL: off the event loop, so reads keep flowing.
        await asyncio.to_thread(self._index.upsert, docs)
        return len(models)
