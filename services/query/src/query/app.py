"""``build_app(settings)``: wiring of the query service."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from query.config import QuerySettings
from query.reads import Reads
from query.routes import build_router
from shared.auth import Principal
from shared.http_app import VERSION, service_app
from shared.http_auth import http_principal
from shared.kafka import make_broker
from shared.mongo import database, make_client


def visible_to(_: Principal) -> dict[str, Any]:
    """What the caller may read, as a MongoDB filter (everything, until access control lands)."""
    return {}


def build_app(settings: QuerySettings) -> FastAPI:
    """Wire the read API over MongoDB; Kafka is used only to publish access events."""
    client = make_client(settings)
    reads = Reads(database(client, settings))
    app = service_app(title="query", client=client, broker=make_broker(settings))
    app.include_router(build_router(reads=reads, principal=http_principal, visible=visible_to, service_version=VERSION))
    return app
