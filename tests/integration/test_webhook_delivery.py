"""The delivery worker against MongoDB and real HTTP receivers: pinned addresses, fair shares per team."""

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.webhook_secrets import new_secret
from deploy_tracker.webhooks import DeliveryWorker
from registry_cli.config import free_port
from shared.mongo import WEBHOOK_DELIVERIES, WEBHOOKS, ensure_indexes
from tests.infra import Infra

pytestmark = pytest.mark.integration


class Receiver:
    """Counts requests; a holding receiver answers none until released."""

    def __init__(self, *, holding: bool = False) -> None:
        self.port, self.hits = free_port(), 0
        self.released = asyncio.Event()
        if not holding:
            self.released.set()

    async def endpoint(self, _: Request) -> Response:
        self.hits += 1
        await self.released.wait()
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def serving(box: Receiver) -> AsyncIterator[Receiver]:
    app = Starlette(routes=[Route("/{path}", box.endpoint, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=box.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield box
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


@pytest.fixture
async def db(infra: Infra, db_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    await ensure_indexes(client[db_name], [WEBHOOKS, WEBHOOK_DELIVERIES])
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()


async def subscribe(db: Any, team: str, url: str, deliveries: int) -> list[tuple[str, str]]:
    hook = f"wh_{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    await db[WEBHOOKS].insert_one(
        {"_id": hook, "team": team, "url": url, "event_types": ["*"], "active": True, "secret": new_secret()}
    )
    docs = [
        {
            "_id": f"{hook}:{n}",
            "webhook_id": hook,
            "team": team,
            "event_id": str(n),
            "event_type": "t",
            "body": "{}",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": now,
            "created_at": now,
            "errors": [],
        }
        for n in range(deliveries)
    ]
    await db[WEBHOOK_DELIVERIES].insert_many(docs)
    return [(str(doc["_id"]), team) for doc in docs]


@contextlib.asynccontextmanager
async def working(worker: DeliveryWorker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Any, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_name_that_rebinds_to_loopback_after_vetting_is_never_called(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found: the URL was resolved for the check and again by the HTTP client, so a name answering
    # a public address first and 127.0.0.1 next reached loopback.
    answers = ["8.8.8.8", "127.0.0.1"]
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings = DeployTrackerSettings(webhook_timeout_seconds=1.0, webhook_max_attempts=1, allow_private_webhooks=False)
    worker = DeliveryWorker(db, settings)
    async with serving(Receiver()) as inside:
        queued = await subscribe(db, "evil", f"http://rebind.test:{inside.port}/hook", 1)
        async with working(worker):
            worker.enqueue(queued)

            async def attempted() -> bool:
                doc = await db[WEBHOOK_DELIVERIES].find_one({"_id": queued[0][0]})
                return bool(doc["attempts"])

            await until(attempted)
    doc = await db[WEBHOOK_DELIVERIES].find_one({"_id": queued[0][0]})
    assert inside.hits == 0
    assert doc["errors"][0]["error"] in ("connection_failed", "timeout")  # a category, not a socket error


async def test_one_teams_slow_endpoints_do_not_starve_another_team(db: Any) -> None:
    # Found: one global concurrency limit, so a team with many slow deliveries held every slot.
    settings = DeployTrackerSettings(
        webhook_timeout_seconds=60.0, webhook_concurrency=8, webhook_team_concurrency=2, allow_private_webhooks=True
    )
    worker = DeliveryWorker(db, settings)
    async with serving(Receiver(holding=True)) as slow, serving(Receiver()) as fast:
        slow_queue = await subscribe(db, "slow-team", f"http://127.0.0.1:{slow.port}/hook", 20)
        fast_queue = await subscribe(db, "fast-team", f"http://127.0.0.1:{fast.port}/hook", 3)
        async with working(worker):
            worker.enqueue(slow_queue)

            async def slow_team_busy() -> bool:
                return slow.hits >= settings.webhook_team_concurrency

            await until(slow_team_busy)
            worker.enqueue(fast_queue)

            async def fast_delivered() -> bool:
                return fast.hits == 3

            await until(fast_delivered, timeout=15)  # while every slow delivery is still held
            assert slow.hits == settings.webhook_team_concurrency  # its share, not every slot
            slow.released.set()
