"""The search index as a projection of the read model, kept current by the models each batch of events changes.

The read model (:mod:`query.projection`) is the one consumer of ``registry.events`` in the query
service; it tells its subscribers which models each applied batch changed. Once it is loaded the
index is built from it, then every changed model is indexed again from memory (or deleted from
the index when the read model no longer holds it). Nothing here reads a database or the broker.

Changes are indexed in rounds at most every :data:`REFRESH_SECONDS` (as a search engine's refresh
interval): a commit of the index costs milliseconds of CPU, and indexing each registration on
its own was most of the query service's work under a steady stream of them. Two kinds of change
go at once: one that takes a model from a team (a team leaves its readers, or the model leaves
the read model), so a former reader never finds it, and one a search is waiting for (it sent
the write's consistency token).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from query import metrics
from query.api.reads import Reads
from query.search.documents import readers_of
from registry_contract.documents import Document

log = structlog.get_logger(__name__)
BUILD_BATCH = 500  # models indexed per call into the index
VERSIONS_PER_MODEL = 200  # newest versions of a model that feed its search document
DOCUMENTS_PER_YIELD = 4  # search documents built between two turns of the event loop
REFRESH_SECONDS = 0.5  # at most this long between a change and the search that finds it


class Index(Protocol):
    """What the projection needs of the search index."""

    def upsert(self, docs: Sequence[Any]) -> None: ...
    def delete(self, model_ids: Sequence[str]) -> None: ...
    def commit(self) -> None: ...
    def holders(self, model_id: str) -> tuple[str, ...]: ...


class Documents(Protocol):
    """Turns a model and its versions into the index's document."""

    def __call__(self, model: Document, versions: list[Document]) -> Any: ...


class SearchProjection:
    """Builds the index from the read model once it is loaded, then re-indexes each model it changes."""

    def __init__(
        self, reads: Reads, index: Index, document: Documents, *, loaded: Callable[[], Awaitable[object]]
    ) -> None:
        self._reads, self._index, self._document = reads, index, document
        self._loaded = loaded  # returns once the read model holds what was persisted or caught up
        self._changed: set[str] = set()
        self._applying: set[str] = set()
        self._applying_readers: dict[str, set[str]] = {}  # readers of the models in the round being applied
        self._waiting = asyncio.Event()
        self._urgent = asyncio.Event()  # a change that may not wait for the refresh interval
        self._applied = asyncio.Event()  # set (and replaced) after each round of changes
        self._last_round = float("-inf")  # event-loop time the last round of changes started
        self.built = asyncio.Event()
        reads.read_model.subscribe(self.note)

    def note(self, model_ids: set[str]) -> None:
        """Note changed models for the next round (a :meth:`ReadModel.subscribe` callback)."""
        self._changed |= model_ids
        if any(self._taken_from_a_team(model_id) for model_id in model_ids):
            self._urgent.set()
        self._waiting.set()

    def _taken_from_a_team(self, model_id: str) -> bool:
        """Whether a team whose index holds the model, or will once the round being applied is, may no longer read it.

        (Or the model is gone.) Before and during the build the index holds only part of what it
        will: the build's end asks again about every change noted meanwhile.
        """
        model = self._reads.read_model.models.get(model_id)
        readers = set(readers_of(model)) if model is not None else set()
        held = set(self._index.holders(model_id)) | self._applying_readers.get(model_id, set())
        return bool(held - readers)

    async def ready(self) -> None:
        """A readiness check: fails until the first build is complete."""
        if not self.built.is_set():
            raise RuntimeError("the search index is still being built")

    def unavailable(self, down: Mapping[str, str], *, task: str = "search-projection") -> str | None:
        """Why search must not answer now (``None`` when it may): not built yet, or ``task`` is ``down``.

        A projection that died stops re-indexing changed models, so its index may still hold a model
        for a team it was unshared from; until it has been restarted and rebuilt, search refuses.
        """
        if task in down:
            return "the search index is not following changes (it is being restarted); try again shortly"
        if not self.built.is_set():
            return "the search index is being built; try again shortly"
        return None

    async def run(self) -> None:
        """Build once the read model is loaded, then index changed models until cancelled.

        Run again after a failure (the chassis restarts it), it rebuilds from the read model, and
        readiness fails until the rebuild is done.
        """
        self.built.clear()
        await self._loaded()
        self._changed.clear()  # the build reads every model as it stands now
        await self.build()
        while True:
            await self._waiting.wait()
            await self._refresh_due()
            self._waiting.clear()
            self._urgent.clear()
            self._last_round = asyncio.get_running_loop().time()
            self._applying, self._changed = self._changed, set()
            try:
                await self.apply(self._applying)
            finally:
                self._applying, self._applying_readers = set(), {}
                self._applied.set()
                self._applied = asyncio.Event()

    async def _refresh_due(self) -> None:
        """Return when the next round may start: the refresh interval is over, or a change is urgent."""
        remaining = self._last_round + REFRESH_SECONDS - asyncio.get_running_loop().time()
        if remaining > 0 and not self._urgent.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):  # not wait_for: see shared.outbox.relay
                    await self._urgent.wait()

    async def caught_up(self, model_ids: set[str], timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until no change of ``model_ids`` the read model has applied is still unindexed.

        Together with :meth:`ReadModel.reached`, a search that sends a write's consistency token sees it.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while model_ids & (self._changed | self._applying) or not self.built.is_set():
            if model_ids & self._changed:
                self._urgent.set()  # a search waits for it: no refresh interval (again after each round)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            waiting = self._applied if self.built.is_set() else self.built
            try:
                async with asyncio.timeout(remaining):  # not wait_for: see shared.outbox.relay
                    await waiting.wait()
            except TimeoutError:
                return False
        return True

    async def build(self) -> int:
        """Index every model of the read model; return how many."""
        started, count = time.perf_counter(), 0
        model_ids = list(self._reads.read_model.models)
        for start in range(0, len(model_ids), BUILD_BATCH):
            docs, _ = self._documents(model_ids[start : start + BUILD_BATCH])
            count += await self._upsert(docs)
        await asyncio.to_thread(self._index.commit)
        self._last_round = asyncio.get_running_loop().time()
        if any(self._taken_from_a_team(model_id) for model_id in self._changed):  # noted during the build
            self._urgent.set()
        self.built.set()
        seconds = time.perf_counter() - started
        metrics.SEARCH_BUILD_SECONDS.set(seconds)
        log.info("search index built", models=count, seconds=round(seconds, 2))
        return count

    async def apply(self, changed: set[str]) -> None:
        """Index the current documents of ``changed`` models again; drop those the read model no longer holds."""
        if not changed:
            return
        models = self._reads.read_model.models
        self._applying_readers = {mid: set(readers_of(models[mid])) for mid in changed if mid in models}
        model_ids, gone = sorted(changed), []
        # A few models at a time: a document of a model with many versions takes a millisecond or
        # more to build, and reads wait while it is built; each upsert (in a thread) lets them in.
        for start in range(0, len(model_ids), DOCUMENTS_PER_YIELD):
            docs, missing = self._documents(model_ids[start : start + DOCUMENTS_PER_YIELD])
            await self._upsert(docs)
            gone += missing
        await asyncio.to_thread(self._index.delete, gone)
        await asyncio.to_thread(self._index.commit)
        metrics.SEARCH_EVENTS_APPLIED.inc(len(changed))

    def _documents(self, model_ids: Sequence[str]) -> tuple[list[Any], list[str]]:
        """The search documents of the models of ``model_ids`` held now, and the ids of those not held.

        Built between two awaits, so each document is one state of its model and versions.
        """
        models, versions = self._reads.read_model.models, self._reads.version_orders
        docs, gone = [], []
        for model_id in model_ids:
            model = models.get(model_id)
            if model is None:
                gone.append(model_id)
                continue
            newest = versions.newest(model_id, VERSIONS_PER_MODEL)
            docs.append(self._document(model, newest))
        return docs, gone

    async def _upsert(self, docs: list[Any]) -> int:
        # The index works in Rust without the GIL: off the event loop, so reads keep flowing.
        await asyncio.to_thread(self._index.upsert, docs)
        return len(docs)
