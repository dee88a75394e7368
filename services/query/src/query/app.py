"""``build_app(settings)``: wiring of the query service."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from query import card_routes, deployments_routes, meta_routes, models_routes, search_routes, versions_routes
from query.config import QuerySettings
from query.feed_routes import router as feed_router
from query.mcp_server import mount_mcp
from query.reads import Reads
from query.search.documents import search_document
from query.search.index import SearchIndex
from query.search_projection import SearchProjection
from shared.chassis import asyncapi
from shared.chassis.http_app import service_app
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import make_client
from shared.contract.auth import Principal


def visible_to(principal: Principal) -> dict[str, Any]:
    """What the caller may read, as a MongoDB filter: its team's models and those shared with it.

    ``readers`` (owner team plus teams it is shared with) is kept on each model by registration,
    so this is one multikey equality, and hidden models never reach lists, counts or cursors.
    """
    return {} if principal.is_platform_admin else {"readers": principal.team}


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
    for module in (models_routes, versions_routes, deployments_routes, meta_routes):
        app.include_router(module.router)
    app.include_router(feed_router)
    app.include_router(search_routes.router)
    app.include_router(card_routes.router)
    asyncapi.serve(app, settings, consumes=["events"], publishes=["access"])
    mount_mcp(service)
    return app
