"""Webhook deliveries to a local receiver: signed, filtered, retried, dead-lettered, isolated."""

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from deploy_tracker.secret_box import SEALED
from deploy_tracker.storage import WEBHOOKS
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY
from tests.waiting import serving, until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}


class Receiver:
    """Records every request; /flaky fails twice, /hang never answers in time, /dead always fails."""

    def __init__(self) -> None:
        self.received: dict[str, list[tuple[dict[str, str], bytes]]] = defaultdict(list)
        self.port = 0  # set once it serves

    async def endpoint(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.received[path].append((dict(request.headers), await request.body()))
        if path == "hang":
            await asyncio.sleep(30)  # the thing under test: a receiver that outlasts the delivery time-out
        if path == "dead" or (path == "flaky" and len(self.received[path]) <= 2):
            return Response(status_code=500)
        return Response(status_code=204)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box = Receiver()
    async with serving([Route("/{path}", box.endpoint, methods=["POST"])]) as port:
        box.port = port
        yield box


async def test_deliveries_are_signed_filtered_retried_dead_lettered_and_isolated(
    stack: EmbeddedStack, receiver: Receiver
) -> None:
    team = f"wh-{uuid.uuid4().hex[:6]}"
    registered = "registry.event.model_version_registered"
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        token = (
            await http.post(f"/v1/teams/{team}/api-keys", json={"name": "a", "scopes": ["team:admin", "models:write"]})
        ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    hooks: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=headers) as tracker:
        for path, types in (
            ("ok", [registered]),
            ("filtered", ["registry.event.deployment_status_changed"]),
            ("flaky", [registered]),
            ("hang", [registered]),
            ("dead", ["*"]),
        ):
            subscription: dict[str, Any] = {"url": receiver.url(path), "event_types": types}
            if path == "dead":
                subscription["max_attempts"] = 2  # its own limit, below the service default of 3
            response = await tracker.post(f"/v1/teams/{team}/webhooks", json=subscription)
            assert response.status_code == 201, response.text
            hooks[path] = response.json()
        listed = (await tracker.get(f"/v1/teams/{team}/webhooks")).json()["items"]
        assert len(listed) == 5 and all("secret" not in hook for hook in listed)
        async with httpx.AsyncClient(base_url=stack.url("registration"), headers=headers) as registration:
            body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
            assert (await registration.post(f"/v1/models/{team}/m/versions", json=body)).status_code == 201

        async def delivered_ok() -> bool:
            return bool(receiver.received["ok"])

        await until(delivered_ok, timeout=30, what="the delivery to /ok")
        # The hanging endpoint holds its own delivery only: the healthy one was served meanwhile.
        hang = (await tracker.get(f"/v1/teams/{team}/webhooks/{hooks['hang']['id']}/deliveries")).json()["items"]
        assert hang and hang[0]["status"] == "pending"

        async def settled() -> bool:
            states = {}
            for path in ("flaky", "hang", "dead"):
                items = (await tracker.get(f"/v1/teams/{team}/webhooks/{hooks[path]['id']}/deliveries")).json()
                states[path] = [d["status"] for d in items["items"]]
            return states == {"flaky": ["delivered"], "hang": ["dead"], "dead": ["dead"]}

        await until(settled, timeout=60, what="flaky delivered, hang and dead dead-lettered")
        dead = (
            await tracker.get(f"/v1/teams/{team}/webhooks/{hooks['dead']['id']}/deliveries", params={"status": "dead"})
        ).json()["items"]
    # Errors are stored as coarse categories: the deliveries API is no probe of what answers where.
    assert dead[0]["attempts"] == 2 and [e["error"] for e in dead[0]["errors"]] == ["http_5xx", "http_5xx"]
    assert len(receiver.received["flaky"]) == 3 and not receiver.received["filtered"]
    request_headers, raw = receiver.received["ok"][0]
    # Standard Webhooks: the reference verifier checks id, timestamp (replay window) and signature.
    event = Webhook(hooks["ok"]["secret"]).verify(raw, request_headers)
    assert request_headers["webhook-id"] and request_headers["content-type"] == "application/cloudevents+json"
    assert event["type"] == registered and event["data"]["team"] == team and event["specversion"] == "1.0"
    with pytest.raises(WebhookVerificationError):  # a captured delivery replayed later is refused
        stale = str(int(request_headers["webhook-timestamp"]) - 3600)
        Webhook(hooks["ok"]["secret"]).verify(raw, {**request_headers, "webhook-timestamp": stale})


async def test_a_rotated_secret_keeps_signing_beside_the_new_one_during_the_overlap(
    stack: EmbeddedStack, receiver: Receiver
) -> None:
    team = f"wr-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        token = (
            await http.post(f"/v1/teams/{team}/api-keys", json={"name": "a", "scopes": ["team:admin", "models:write"]})
        ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=headers) as tracker,
        httpx.AsyncClient(base_url=stack.url("registration"), headers=headers) as registration,
    ):
        hook = (
            await tracker.post(f"/v1/teams/{team}/webhooks", json={"url": receiver.url("rot"), "event_types": ["*"]})
        ).json()
        rotated = await tracker.post(
            f"/v1/teams/{team}/webhooks/{hook['id']}/secret", json={"previous_valid_seconds": 600}
        )
        assert rotated.status_code == 200 and rotated.json()["secret"] != hook["secret"]
        body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
        assert (await registration.post(f"/v1/models/{team}/m/versions", json=body)).status_code == 201

        async def delivered() -> bool:
            return bool(receiver.received["rot"])

        await until(delivered, timeout=30, what="the delivery to /rot")
    request_headers, raw = receiver.received["rot"][0]
    assert len(request_headers["webhook-signature"].split(" ")) == 2
    Webhook(hook["secret"]).verify(raw, request_headers)  # receivers not switched yet
    Webhook(rotated.json()["secret"]).verify(raw, request_headers)  # receivers switched already
    # At rest, both are sealed: a copy of the database holds neither secret.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri)
    stored = await client[service_database("deploy-tracker")][WEBHOOKS].find_one({"_id": hook["id"]})
    await client.close()
    assert stored is not None
    assert stored["secret"].startswith(SEALED) and stored["previous_secret"].startswith(SEALED)
    raw_document = repr(stored)
    for secret in (hook["secret"], rotated.json()["secret"]):
        assert secret not in raw_document and secret.removeprefix("whsec_") not in raw_document


async def test_other_teams_cannot_see_or_manage_webhooks(stack: EmbeddedStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        token = (
            await http.post(
                f"/v1/teams/wh-other-{uuid.uuid4().hex[:4]}/api-keys", json={"name": "a", "scopes": ["team:admin"]}
            )
        ).json()["token"]
    async with httpx.AsyncClient(
        base_url=stack.url("deploy-tracker"), headers={"Authorization": f"Bearer {token}"}
    ) as tracker:
        assert (await tracker.get("/v1/teams/somebody/webhooks")).status_code == 403
        refused = await tracker.post(
            "/v1/teams/somebody/webhooks", json={"url": "http://127.0.0.1/x", "event_types": ["*"]}
        )
        assert refused.status_code == 403
