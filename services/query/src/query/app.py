"""``build_app(settings)``: wiring of the query service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from shared.auth import Principal
from shared.health import health_router
from shared.http_auth import http_principal
from shared.kafka import make_broker
from shared.kafka import ping as kafka_ping
from shared.mongo import database, make_client

from query.config import QuerySettings
from query.reads import Reads
from query.routes import build_router
from shared import problems

VERSION = "0.1.0"


def visible_to(_: Principal) -> dict[str, Any]:
    """What the caller may read, as a MongoDB filter (everything, until access control lands)."""
    return {}


def build_app(settings: QuerySettings) -> FastAPI:
    """Wire the read API over MongoDB; Kafka is used only to publish access events."""
    client = make_client(settings)
    reads = Reads(database(client, settings))
    broker = make_broker(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await client.close()

    app = FastAPI(title="Model Registry: query", version=VERSION, lifespan=lifespan)
    problems.install(app)
    app.include_router(
        health_router(
            {
                "mongodb": lambda: client.admin.command("ping"),
                "kafka": lambda: kafka_ping(broker),
            }
        )
    )
    app.include_router(
        build_router(reads=reads, principal=http_principal, visible=visible_to, service_version=VERSION)
    )
    return app
