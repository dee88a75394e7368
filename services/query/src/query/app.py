"""``build_app(settings)``: wiring of the query service."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from fastapi import FastAPI
from pymongo.errors import PyMongoError

from query import (
    card_routes,
    deployments_routes,
    lineage_routes,
    meta_routes,
    metrics,
    models_routes,
    search_routes,
    versions_routes,
)
from query.config import QuerySettings
from query.document_cache import DocumentCache
from query.feed import Feed
from query.feed_routes import router as feed_router
from query.mcp_server import mount_mcp
from query.reads import Reads
from query.search.documents import search_document
from query.search.index import SearchIndex
from query.search_projection import SearchProjection
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import MODEL_VERSIONS, MODELS, make_client
from shared.contract.auth import Principal

log = structlog.get_logger(__name__)


def visible_to(principal: Principal) -> dict[str, Any]:
    """What the caller may read, as a MongoDB filter: its team's models and those shared with it.

    ``readers`` (owner team plus teams it is shared with) is kept on each model by registration,
    so this is one multikey equality, and hidden models never reach lists, counts or cursors.
    """
    return {} if principal.is_platform_admin else {"readers": principal.team}


async def warm_after(built: asyncio.Event, feed: Feed) -> None:
    """Once ``built`` is set, render every feed document into the cache (a failure only costs speed)."""
    await built.wait()
    started = time.perf_counter()
    try:
        count = await feed.warm()
    except PyMongoError as exc:  # the feed renders on demand until the next start
        log.warning("feed cache not warmed", error=str(exc))
        return
    metrics.FEED_WARM_SECONDS.set(time.perf_counter() - started)
    log.info("feed cache warmed", documents=count, seconds=round(time.perf_counter() - started, 2))


def build_app(settings: QuerySettings) -> FastAPI:
    """Wire the read API over MongoDB, the search index kept current from ``registry.events``."""
    service = service_app(settings=settings, client=make_client(settings), broker=make_broker(settings))
    app = service.app
    # What the routes' dependencies (query.deps) read from each request.
    app.state.reads = Reads(service.db)
    app.state.visible_to = visible_to
    app.state.search_index = index = SearchIndex()
    projection = SearchProjection(service.db, index, search_document, settings=settings)
    service.in_background("search-projection", projection.run)
    service.readiness.checks["search_index"] = projection.ready
    cache = DocumentCache(settings.feed_cache_documents)
    metrics.FEED_CACHED_DOCUMENTS.set_function(lambda: len(cache))
    app.state.feed = feed = Feed(service.db[MODELS], service.db[MODEL_VERSIONS], cache=cache)
    # After the index build, which readiness waits for: the two would only slow each other down.
    service.in_background("feed-warm", lambda: warm_after(projection.built, feed))
    for module in (models_routes, versions_routes, deployments_routes, meta_routes, lineage_routes):
        app.include_router(module.router)
    app.include_router(feed_router)
    app.include_router(search_routes.router)
    app.include_router(card_routes.router)
    asyncapi.serve(app, settings, consumes=["events"], publishes=["access"])
    mount_mcp(service)
    return app
