"""``build_app(settings)``: wiring of the query service."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from query.config import QuerySettings
from query.reads import Reads
from query.routes import build_router
from shared.auth import Principal
from shared.http_app import VERSION, service_app
from shared.kafka import make_broker
from shared.mongo import make_client


def visible_to(principal: Principal) -> dict[str, Any]:
    """What the caller may read, as a MongoDB filter: its team's models and those shared with it.

    ``readers`` (owner team plus teams it is shared with) is kept on each model by registration,
    so this is one multikey equality, and hidden models never reach lists, counts or cursors.
    """
    return {} if principal.is_platform_admin else {"readers": principal.team}


def build_app(settings: QuerySettings) -> FastAPI:
    """Wire the read API over MongoDB; Kafka is used only to publish access events."""
    client = make_client(settings)
    service = service_app(settings=settings, client=client, broker=make_broker(settings))
    reads = Reads(service.db)
    service.app.include_router(
        build_router(reads=reads, guard=service.guard, visible=visible_to, service_version=VERSION)
    )
    return service.app
