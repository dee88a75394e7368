"""Registration as the key owner of a test's in-process query, tracker or audit service.

Only registration holds API keys; the others ask its internal routes (``RemoteKeyStore``). A test
that runs one of them in-process runs registration's real app beside it on a loopback port, over
the test's database, with its HTTP alone (no lifespan: no consumer, no relay), and points the
service's ``REGISTRATION_INTERNAL_URL`` at it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import uvicorn

from registration.app import build_app
from registration.config import RegistrationSettings
from registry_cli.config import free_port
from shared.chassis.settings import CommonSettings
from tests.waiting import until

S = TypeVar("S", bound=CommonSettings)


@asynccontextmanager
async def registration_serving_keys(settings: CommonSettings) -> AsyncIterator[str]:
    """Registration's HTTP over ``settings``' database and credentials on a loopback port; yields its URL."""
    owner = RegistrationSettings(
        mongodb_uri=settings.mongodb_uri,
        mongodb_database=settings.mongodb_database,
        event_signing_key=settings.event_signing_key,
        internal_api_token=settings.internal_api_token,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
    )
    app = build_app(owner)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not task.done(), "registration stopped before it started"
        return bool(server.started)

    await until(started, timeout=10, what="registration listening", interval=0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await app.state.service.client.close()


@asynccontextmanager
async def asking_registration_for_keys(settings: S) -> AsyncIterator[S]:
    """``settings`` whose service authenticates keys through a registration of its own database."""
    async with registration_serving_keys(settings) as url:
        yield settings.model_copy(update={"registration_internal_url": url})
