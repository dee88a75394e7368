"""No record stops a consumer: for each consumer, a poison record and then a valid one that must land.

A body of 5,000 ``[`` (RecursionError), a structured event whose ``subject`` is a number (pydantic
ValidationError) and a tag key with NUL (refused by the driver) would each fail their batch; retried
for ever, that batch would stop every team's registrations, deployments and auditing.
"""

import json
import uuid
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.http_tools import team_name
from tests.kafka_tools import Collector, caused_by, header, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
CE_HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"poison"),
    ("ce_source", b"/attacker"),
    ("ce_type", b"registry.command.register_model_version"),
    ("content-type", b"application/json"),
]
DEEP = b"[" * 5000
NUMBER_SUBJECT = json.dumps(
    {"specversion": "1.0", "id": "p2", "source": "/a", "type": "t", "subject": 5, "data": {}}
).encode()
STRUCTURED = [("content-type", b"application/cloudevents+json")]


async def readable(stack: EmbeddedStack, path: str) -> bool:
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN) as http:
        return (await http.get(path)).status_code == 200


async def audited(stack: EmbeddedStack, ce_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
        entries = (await http.get("/v1/audit", params={"limit": 200})).json()["items"]
    return [entry for entry in entries if entry["ce_id"] == ce_id]


@pytest.mark.parametrize(
    ("poison", "headers", "reason"),
    [(DEEP, CE_HEADERS, "too_deep"), (NUMBER_SUBJECT, STRUCTURED, "malformed")],
    ids=["deep-nesting", "number-subject"],
)
async def test_registration_and_audit_dead_letter_the_poison_and_take_the_next_command(
    stack: EmbeddedStack, poison: bytes, headers: list[tuple[str, bytes]], reason: str
) -> None:
    owner = team_name("h")
    good = register_event(owner, "m", token=ADMIN_KEY.token)
    key = f"{owner}/m".encode()  # same key: same partition, the valid command is right behind
    bootstrap = stack.settings.kafka_bootstrap
    async with Collector(bootstrap, "registry.commands.dlq") as dead:
        await publish_raw(bootstrap, "registry.commands", [(poison, headers, key), (*binary_record(good), key)])
        await until(lambda: readable(stack, f"/v1/models/{owner}/m/versions/1.0.0"))
        [letter] = await dead.wait_for(lambda r: r.key == key)
    assert header(letter, "dlq_reason") == reason and letter.value == poison
    assert await until(lambda: audited(stack, good.id))  # the audit consumer moved on too


async def test_a_key_mongodb_cannot_store_is_rejected_and_the_next_command_lands(stack: EmbeddedStack) -> None:
    owner = team_name("h")
    bad = register_event(owner, "m", "1.0.0", token=ADMIN_KEY.token, tags={"a\u0000b": "x"})
    good = register_event(owner, "m", "1.0.1", token=ADMIN_KEY.token, signature={"inputs": [{"name": "x"}]})
    key = f"{owner}/m".encode()
    bootstrap = stack.settings.kafka_bootstrap
    async with Collector(bootstrap, "registry.events") as events:
        await publish_raw(bootstrap, "registry.commands", [(*binary_record(bad), key), (*binary_record(good), key)])
        [rejected] = await events.wait_for(caused_by(bad.id))
        await until(lambda: readable(stack, f"/v1/models/{owner}/m/versions/1.0.1"))
    assert header(rejected, "ce_type") == messages.COMMAND_REJECTED
    assert json.loads(rejected.value)["reason"] == "invalid"


async def test_the_tracker_dead_letters_a_poison_report_and_applies_the_next(stack: EmbeddedStack) -> None:
    owner = team_name("h")
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
        assert (await http.post(f"/v1/models/{owner}/m/versions", json=body)).status_code == 201
    report = CloudEvent(
        source="/ci",
        type=messages.DEPLOY_STATUS_REPORTED,
        sign_with=ADMIN_KEY.token,
        data={
            "team": owner,
            "name": "m",
            "version": "1.0.0",
            "environment": "staging",
            "status": "deploying",
            "occurred_at": "2026-11-26T10:00:00Z",
        },
    )
    key = f"{owner}/m".encode()
    bootstrap = stack.settings.kafka_bootstrap
    async with Collector(bootstrap, "deploy.events.dlq") as dead:
        await publish_raw(bootstrap, "deploy.events", [(DEEP, CE_HEADERS, key), (*report.to_kafka(), key)])

        async def applied() -> bool:
            async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN) as http:
                body = (await http.get(f"/v1/models/{owner}/m/versions/1.0.0/deployments")).json()
            return bool(body.get("environments", {}).get("staging", {}).get("status") == "deploying")

        await until(applied)
        await dead.wait_for(lambda r: r.key == key)


async def test_the_audit_takes_access_events_after_a_poison_on_registry_access(stack: EmbeddedStack) -> None:
    correlation = f"after-poison-{uuid.uuid4().hex[:8]}"
    await publish_raw(stack.settings.kafka_bootstrap, "registry.access", [(DEEP, CE_HEADERS, b"anonymous")])
    async with httpx.AsyncClient(base_url=stack.url("query"), headers={**ADMIN, "X-Correlation-ID": correlation}) as q:
        assert (await q.get("/v1/meta")).status_code == 200

    async def read_audited() -> list[Any]:
        async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
            return list((await http.get("/v1/audit", params={"correlation_id": correlation})).json()["items"])

    [entry] = await until(read_audited)
    assert entry["type"] == messages.ACCESS_READ and entry["verified"] == "service"
