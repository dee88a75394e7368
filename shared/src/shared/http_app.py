"""The FastAPI application every service starts from: lifespan, problem+json, health, metrics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from shared import problems
from shared.health import health_router
from shared.kafka import ping as kafka_ping
from shared.mongo import Document

Hook = Callable[[], Awaitable[None]]
VERSION = "0.1.0"


def service_app(
    *,
    title: str,
    client: AsyncMongoClient[Document],
    broker: KafkaBroker,
    on_start: list[Hook] | None = None,
    on_stop: list[Hook] | None = None,
) -> FastAPI:
    """An app that starts ``broker``, runs the hooks, and closes everything on shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in on_start or []:
            await hook()
        await broker.start()
        try:
            yield
        finally:
            for hook in on_stop or []:
                await hook()
            await broker.stop()
            await client.close()

    app = FastAPI(title=f"Model Registry: {title}", version=VERSION, lifespan=lifespan)
    problems.install(app)

    async def mongo_ping() -> None:
        await client.admin.command("ping")

    async def broker_ping() -> None:
        await kafka_ping(broker)

    app.include_router(health_router({"mongodb": mongo_ping, "kafka": broker_ping}))
    return app
