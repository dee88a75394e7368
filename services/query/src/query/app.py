"""``build_app(settings)``: wiring of the query service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI

from query import metrics
from query.api import (
    card_routes,
    compare_routes,
    deployments_routes,
    history_routes,
    lineage_routes,
    meta_routes,
    models_routes,
    team_routes,
    versions_routes,
)
from query.api.past import PastStates
from query.api.reads import Reads
from query.config import QuerySettings
from query.console import mount_console
from query.feed.documents import Feed
from query.feed.routes import router as feed_router
from query.mcp.server import mount_mcp
from query.projection.build import build_projection
from query.rendered import RenderedCache
from query.search import routes as search_routes
from query.search.documents import search_document
from query.search.index import SearchIndex
from query.search.projection import SearchProjection
from registry_contract.auth import Principal
from registry_contract.documents import Document
from shared.chassis import asyncapi
from shared.chassis.heap import freeze_survivors
from shared.chassis.http_app import service_app
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import make_client

log = structlog.get_logger(__name__)
REFRESH_CHUNK = 200  # changed models rendered per round trip
REFRESH_INTERVAL_SECONDS = 1.0
# At most this share of the time goes to rendering changed models ahead of the syncs that will read
# them. Under the soak's 150 registrations/s over 300 models the refresh was 40% of the event loop
# (py-spy), and reads waited behind it; past the share, rounds come less often and grow, and a model
# changed many times meanwhile is rendered once. A sync renders what is not cached yet itself.
REFRESH_SHARE = 0.2
REFRESH_MAX_PAUSE_SECONDS = 30.0  # a round slowed by something else (a database stall) does not stop it for long


def visible_to(principal: Principal) -> dict[str, Any]:
    """What the caller may read: every model (a platform admin), or its team's and those shared with it.

    ``readers`` (owner team plus teams it is shared with) is kept on each model, so hidden models
    never reach lists, counts or cursors (:func:`query.api.reads.readable`).
    """
    return {} if principal.is_platform_admin else {"readers": principal.team}


class ChangedModels:
    """Ids of models changed since the feed last rendered them: a burst of changes collapses into one set."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._waiting = asyncio.Event()

    def add(self, model_ids: set[str]) -> None:
        """Note changed models (a :meth:`ReadModel.subscribe` callback, after each batch of events)."""
        self._ids |= model_ids
        self._waiting.set()

    async def take(self) -> list[str]:
        """Wait for changes, then take every id noted so far."""
        await self._waiting.wait()
        self._waiting.clear()
        taken, self._ids = sorted(self._ids), set()
        return taken


async def keep_feed_warm(loaded: Callable[[], Awaitable[object]], feed: Feed, changed: ChangedModels) -> None:
    """Once the read model is loaded, render every feed document into memory; then each model as it changes.

    A sync of the feed then renders nothing. A model changed again before its turn is rendered once.
    """
    await loaded()
    started = time.perf_counter()
    count = await feed.warm()
    metrics.FEED_WARM_SECONDS.set(time.perf_counter() - started)
    log.info("feed cache warmed", documents=count, seconds=round(time.perf_counter() - started, 2))
    while True:
        model_ids = await changed.take()
        started = time.perf_counter()
        for start in range(0, len(model_ids), REFRESH_CHUNK):
            await feed.refresh(model_ids[start : start + REFRESH_CHUNK])
        await asyncio.sleep(pause_after_refresh(time.perf_counter() - started))


def pause_after_refresh(spent: float) -> float:
    """Seconds to wait after a refresh round that took ``spent``, to keep rendering to :data:`REFRESH_SHARE`.

    A second at least: a burst renders in a few large rounds, not one per batch. At most
    :data:`REFRESH_MAX_PAUSE_SECONDS`: ``spent`` is the round's wall time, its awaits included.
    """
    return min(max(REFRESH_INTERVAL_SECONDS, spent * (1 - REFRESH_SHARE) / REFRESH_SHARE), REFRESH_MAX_PAUSE_SECONDS)


HEAP_FREEZE_SECONDS = 2.0  # what survived is frozen this often: a full collection walks 2 s of allocations
HEAP_FULL_SECONDS = 3600.0  # everything is collected this often (cycles dropped after they were frozen)


def build_app(settings: QuerySettings) -> FastAPI:
    """Wire the read API over the in-memory read model, kept current from ``registry.events``."""
    service = service_app(settings=settings, client=make_client(settings), broker=make_broker(settings))
    app = service.app
    read_model, run_projection, projection_ready = build_projection(service, settings)

    async def project() -> None:
        await run_projection()

    service.in_background("projection", project)
    service.readiness.checks["projection"] = projection_ready
    loaded = app.state.projection.started.wait  # the persisted model is loaded and the owners' logs tried
    # What the routes' dependencies (query.deps) read from each request.
    app.state.read_model, app.state.consistency_wait_seconds = read_model, settings.consistency_wait_seconds
    app.state.reads = reads = Reads(read_model)
    app.state.past_states = PastStates(read_model)  # the scratch reads of as_of requests, a few kept
    app.state.visible_to = visible_to
    app.state.search_index = index = SearchIndex()
    metrics.SEARCH_INDEXED_DOCUMENTS.labels("platform").set_function(lambda: len(index))
    metrics.SEARCH_INDEXED_DOCUMENTS.labels("teams").set_function(index.team_documents)
    search = SearchProjection(reads, index, search_document, loaded=loaded)
    service.in_background("search-projection", search.run)
    service.readiness.checks["search_index"] = search.ready
    app.state.search_unavailable = lambda: search.unavailable(service.supervisor.down())
    app.state.search_caught_up = search.caught_up
    cache = RenderedCache[Document](settings.feed_cache_documents)
    metrics.FEED_CACHED_DOCUMENTS.set_function(lambda: len(cache))
    changed = ChangedModels()
    read_model.subscribe(cache.forget)  # before the refresh below: a changed model's old document is never served
    read_model.subscribe(changed.add)
    app.state.feed = feed = Feed(reads, cache=cache)
    service.in_background("feed-cache", lambda: keep_feed_warm(loaded, feed, changed))
    # The read model is a large heap of long-lived objects: keep full collections off it.
    service.in_background("heap", lambda: freeze_survivors(HEAP_FREEZE_SECONDS, full_every_seconds=HEAP_FULL_SECONDS))
    for module in (models_routes, versions_routes, deployments_routes, meta_routes, lineage_routes, team_routes):
        app.include_router(module.router)
    app.include_router(history_routes.router)
    app.include_router(feed_router)
    app.include_router(search_routes.router)
    app.include_router(card_routes.router)
    app.include_router(compare_routes.router)
    asyncapi.serve(app, settings, consumes=["events"], publishes=["access"])
    mount_mcp(service)
    mount_console(service, settings)
    return app
