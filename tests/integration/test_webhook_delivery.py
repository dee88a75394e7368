"""The delivery worker against MongoDB and real HTTP receivers: pinned addresses, fair shares per team."""

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.secret_box import SecretBox
from deploy_tracker.storage import WEBHOOK_DELIVERIES, WEBHOOKS, declared_indexes
from deploy_tracker.webhook_secrets import new_secret
from deploy_tracker.webhooks import DeliveryWorker, fan_out
from registry_contract.envelope import CloudEvent
from shared.chassis.mongo import ensure_indexes
from tests.infra import Infra
from tests.waiting import serving, until

pytestmark = pytest.mark.integration
BOX = SecretBox([Fernet.generate_key().decode()])


class Receiver:
    """Counts requests; a holding receiver answers none until released."""

    def __init__(self, *, holding: bool = False) -> None:
        self.hits = 0
        self.released = asyncio.Event()
        if not holding:
            self.released.set()

    async def endpoint(self, _: Request) -> Response:
        self.hits += 1
        await self.released.wait()
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [Route("/hook", self.endpoint, methods=["POST"])]


@pytest.fixture
async def db(infra: Infra, db_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    await ensure_indexes(client[db_name], declared_indexes(), [WEBHOOKS, WEBHOOK_DELIVERIES])
    yield client[db_name]
    await client.drop_database(db_name)
    await client.close()


async def subscribe(db: Any, team: str, url: str, deliveries: int) -> list[tuple[str, str]]:
    """A subscription of ``team`` to ``url`` and ``deliveries`` pending deliveries (made by fan-out)."""
    await db[WEBHOOKS].insert_one(
        {"_id": f"wh_{uuid.uuid4().hex[:8]}", "team": team, "url": url, "event_types": ["*"], "active": True}
        | {"secret": BOX.seal(new_secret())}
    )
    events = [CloudEvent(source="/t", type="t", data={"team": team, "n": n}) for n in range(deliveries)]
    return await fan_out(db, events)


@contextlib.asynccontextmanager
async def working(worker: DeliveryWorker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_name_that_rebinds_to_loopback_after_vetting_is_never_called(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The address vetted is the address called: resolving the name again in the HTTP client would let
    # a name that answers a public address first and 127.0.0.1 next reach loopback.
    answers = ["8.8.8.8", "127.0.0.1"]
    real = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings = DeployTrackerSettings(webhook_timeout_seconds=1.0, webhook_max_attempts=1, allow_private_webhooks=False)
    worker = DeliveryWorker(db, settings, box=BOX)
    inside = Receiver()
    async with serving(inside.routes()) as port:
        queued = await subscribe(db, "evil", f"http://rebind.test:{port}/hook", 1)
        async with working(worker):
            worker.enqueue(queued)

            async def attempted() -> bool:
                doc = await db[WEBHOOK_DELIVERIES].find_one({"_id": queued[0][0]})
                return bool(doc["attempts"])

            await until(attempted)
    doc = await db[WEBHOOK_DELIVERIES].find_one({"_id": queued[0][0]})
    assert inside.hits == 0
    # A category, not a socket error. Which one depends on what answers the vetted public address
    # from this machine (nothing, or a sandbox's egress proxy with a 4xx): never loopback.
    assert doc["errors"][0]["error"] in ("connection_failed", "timeout", "http_4xx", "http_5xx")


async def test_one_teams_slow_endpoints_do_not_starve_another_team(db: Any) -> None:
    # A per-team limit under the global one: otherwise a team with many slow deliveries holds every slot.
    settings = DeployTrackerSettings(
        webhook_timeout_seconds=60.0, webhook_concurrency=8, webhook_team_concurrency=2, allow_private_webhooks=True
    )
    worker = DeliveryWorker(db, settings, box=BOX)
    slow, fast = Receiver(holding=True), Receiver()
    async with serving(slow.routes()) as slow_port, serving(fast.routes()) as fast_port:
        slow_queue = await subscribe(db, "slow-team", f"http://127.0.0.1:{slow_port}/hook", 20)
        fast_queue = await subscribe(db, "fast-team", f"http://127.0.0.1:{fast_port}/hook", 3)
        async with working(worker):
            worker.enqueue(slow_queue)

            async def slow_team_busy() -> bool:
                return slow.hits >= settings.webhook_team_concurrency

            await until(slow_team_busy)
            worker.enqueue(fast_queue)

            async def fast_delivered() -> bool:
                return fast.hits == 3

            await until(
                fast_delivered, timeout=15, what="the fast team's deliveries"
            )  # while every slow delivery is still held
            assert slow.hits == settings.webhook_team_concurrency  # its share, not every slot
            slow.released.set()


async def test_a_previous_secret_no_key_opens_does_not_stop_deliveries_signed_with_the_current_one(db: Any) -> None:
    # A rotated-out secret sealed under a key since dropped stays in its overlap; deliveries are
    # signed with the secrets that open, not failed as secret_unreadable because of it.
    settings = DeployTrackerSettings(webhook_timeout_seconds=5.0, webhook_max_attempts=1, allow_private_webhooks=True)
    worker = DeliveryWorker(db, settings, box=BOX)
    receiver = Receiver()
    lost = SecretBox([Fernet.generate_key().decode()]).seal(new_secret())
    async with serving(receiver.routes()) as port:
        queued = await subscribe(db, "rotated", f"http://127.0.0.1:{port}/hook", 1)
        expiry = datetime.now(UTC) + timedelta(hours=1)
        await db[WEBHOOKS].update_one(
            {"team": "rotated"}, {"$set": {"previous_secret": lost, "previous_secret_expires_at": expiry}}
        )
        async with working(worker):
            worker.enqueue(queued)

            async def delivered() -> bool:
                doc = await db[WEBHOOK_DELIVERIES].find_one({"_id": queued[0][0]})
                return bool(doc["status"] == "delivered")

            await until(delivered)
    assert receiver.hits == 1
