"""``build_app(settings)``: wiring of the query service."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from fastapi import FastAPI
from pymongo.errors import PyMongoError

from query import metrics
from query.api import (
    card_routes,
    deployments_routes,
    lineage_routes,
    meta_routes,
    models_routes,
    team_routes,
    versions_routes,
)
from query.api.reads import Reads
from query.api.version_cache import VersionCache
from query.config import QuerySettings
from query.console import mount_console
from query.feed.cache import DocumentCache
from query.feed.documents import Feed
from query.feed.routes import router as feed_router
from query.mcp.server import mount_mcp
from query.search import routes as search_routes
from query.search.documents import search_document
from query.search.index import SearchIndex
from query.search.projection import SearchProjection
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import MODEL_VERSIONS, MODELS, make_client
from shared.contract.auth import Principal

log = structlog.get_logger(__name__)
REFRESH_CHUNK = 200  # changed models rendered per round trip
REFRESH_INTERVAL_SECONDS = 1.0


def visible_to(principal: Principal) -> dict[str, Any]:
    """What the caller may read, as a MongoDB filter: its team's models and those shared with it.

    ``readers`` (owner team plus teams it is shared with) is kept on each model by registration,
    so this is one multikey equality, and hidden models never reach lists, counts or cursors.
    """
    return {} if principal.is_platform_admin else {"readers": principal.team}


class ChangedModels:
    """Ids of models changed since the feed last rendered them: a burst of changes collapses into one set."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._waiting = asyncio.Event()

    def add(self, model_ids: set[str]) -> None:
        """Note changed models (called by the search projection after each batch of events)."""
        self._ids |= model_ids
        self._waiting.set()

    async def take(self) -> list[str]:
        """Wait for changes, then take every id noted so far."""
        await self._waiting.wait()
        self._waiting.clear()
        taken, self._ids = sorted(self._ids), set()
        return taken


async def keep_feed_warm(built: asyncio.Event, feed: Feed, changed: ChangedModels) -> None:
    """Once the index is built, render every feed document into memory; then each model as it changes.

    A sync of the feed then reads only the change order from MongoDB. A failure costs only speed:
    the feed renders what it misses.
    """
    await built.wait()
    started = time.perf_counter()
    try:
        count = await feed.warm()
        metrics.FEED_WARM_SECONDS.set(time.perf_counter() - started)
        log.info("feed cache warmed", documents=count, seconds=round(time.perf_counter() - started, 2))
    except PyMongoError as exc:
        log.warning("feed cache not warmed", error=str(exc))
    while True:
        model_ids = await changed.take()
        try:
            for start in range(0, len(model_ids), REFRESH_CHUNK):
                await feed.refresh(model_ids[start : start + REFRESH_CHUNK])
        except PyMongoError as exc:
            log.warning("feed documents not refreshed", models=len(model_ids), error=str(exc))
        # At most one round a second: a burst is rendered in a few large reads instead of one per
        # batch of events, each competing with the search projection's own reads of the same models.
        await asyncio.sleep(REFRESH_INTERVAL_SECONDS)


def build_app(settings: QuerySettings) -> FastAPI:
    """Wire the read API over MongoDB, the search index kept current from ``registry.events``."""
    service = service_app(settings=settings, client=make_client(settings), broker=make_broker(settings))
    app = service.app
    # What the routes' dependencies (query.deps) read from each request.
    app.state.reads = Reads(service.db, version_cache=VersionCache(settings.version_cache_models))
    app.state.visible_to = visible_to
    app.state.search_index = index = SearchIndex()
    metrics.SEARCH_INDEXED_DOCUMENTS.labels("platform").set_function(lambda: len(index))
    metrics.SEARCH_INDEXED_DOCUMENTS.labels("teams").set_function(index.team_documents)
    changed = ChangedModels()
    projection = SearchProjection(service.db, index, search_document, settings=settings, on_change=changed.add)
    service.in_background("search-projection", projection.run)
    service.readiness.checks["search_index"] = projection.ready
    app.state.search_unavailable = lambda: projection.unavailable(service.supervisor.down())
    cache = DocumentCache(settings.feed_cache_documents)
    metrics.FEED_CACHED_DOCUMENTS.set_function(lambda: len(cache))
    app.state.feed = feed = Feed(service.db[MODELS], service.db[MODEL_VERSIONS], cache=cache)
    # After the index build, which readiness waits for: the two would only slow each other down.
    service.in_background("feed-cache", lambda: keep_feed_warm(projection.built, feed, changed))
    for module in (models_routes, versions_routes, deployments_routes, meta_routes, lineage_routes, team_routes):
        app.include_router(module.router)
    app.include_router(feed_router)
    app.include_router(search_routes.router)
    app.include_router(card_routes.router)
    asyncapi.serve(app, settings, consumes=["events"], publishes=["access"])
    mount_mcp(service)
    mount_console(service, settings)
    return app
