"""Nothing on any topic authenticates anywhere: producers sign, they never send their key.

A record carrying ``authorization: Bearer mr_…`` would hand whoever can read ``registry.commands``
or ``deploy.events`` (any consumer, a mirror, a debug tool) working keys for HTTP and Kafka alike.
This module runs last (``tests/conftest.py``): in a full run it reads the whole suite's traffic,
besides the stack run it makes itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from registry_client.kafka import RegistryProducer
from registry_contract.record_signing import signing_key
from tests.bus_scan import authenticating, credentials_in, every_record
from tests.factories import ADMIN_KEY
from tests.http_tools import acting_as, team_key
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCOPES = ["models:read", "models:write", "deployments:write", "team:admin", "audit:read"]


async def stack_run(stack: EmbeddedStack, team: str, token: str) -> None:
    """Every way a producer or a caller writes: the client's Kafka producer, the CLI, HTTP, the bridge, keys."""
    async with RegistryProducer(stack.settings.kafka_bootstrap, api_key=token) as producer:
        await producer.publish("register", _version(team, "1.0.0"))
        async with acting_as(stack, "query", token) as query:

            async def readable() -> bool:
                return (await query.get(f"/v1/models/{team}/m/versions/1.0.0")).status_code == 200

            await until(readable, what="the version registered over Kafka")
        await producer.publish("deploy", _report(team, "1.0.0", "staging"))
    code, out = await _cli(stack, "produce", "register", "--data", json.dumps(_version(team, "1.1.0")), token=token)
    assert code == 0, out
    async with acting_as(stack, "registration", token) as registration:
        body = {k: v for k, v in _version(team, "2.0.0").items() if k not in ("team", "name")}
        assert (await registration.post(f"/v1/models/{team}/m/versions", json=body)).status_code == 201
        made = await registration.post(f"/v1/teams/{team}/api-keys", json={"name": "spare", "scopes": ["models:read"]})
        assert made.status_code == 201, made.text
        revoked = await registration.delete(f"/v1/teams/{team}/api-keys/{made.json()['key_id']}")
        assert revoked.status_code == 204
    async with acting_as(stack, "deploy-tracker", token) as tracker:
        bridged = await tracker.post(
            "/v1/deployments/events", json=_report(team, "2.0.0", "staging"), headers={"Prefer": "wait=20"}
        )
        assert bridged.status_code == 200, bridged.text
    async with acting_as(stack, "query", token) as query:

        async def deployed() -> bool:
            version = (await query.get(f"/v1/models/{team}/m/versions/1.0.0")).json()
            return bool(version.get("environments"))

        await until(deployed, what="the report sent over Kafka applied")


def _version(team: str, version: str) -> dict[str, Any]:
    return {
        "team": team,
        "name": "m",
        "version": version,
        "framework": "onnx",
        "artifact_uri": "s3://models-bucket/m.onnx",
    }


def _report(team: str, version: str, environment: str) -> dict[str, Any]:
    return {
        "team": team,
        "name": "m",
        "version": version,
        "environment": environment,
        "status": "deploying",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def _cli(stack: EmbeddedStack, *args: str, token: str) -> tuple[int, str]:
    env = {**os.environ, "REGISTRY_API_KEY": token, "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "registry_client.cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_no_topic_holds_anything_that_authenticates_anywhere(stack: EmbeddedStack) -> None:
    team = f"bus-{uuid.uuid4().hex[:8]}"
    token = await team_key(stack, team, SCOPES)
    await stack_run(stack, team, token)

    records = await every_record(stack.settings.kafka_bootstrap)
    topics = {record.topic for record in records}
    assert {"registry.commands", "registry.events", "deploy.events", "registry.access"} <= topics  # not vacuous
    signed_by_this_run = ("ce_keyid", token.split("_")[1].encode())
    signed = [r for r in records if signed_by_this_run in [(n, bytes(v)) for n, v in r.headers or ()]]
    assert {r.topic for r in signed} == {"registry.commands", "deploy.events"}  # what the producers sent, signed

    findings = list(credentials_in(records))
    live = await authenticating(findings, stack.settings.mongodb_uri)
    assert live == [], f"{len(live)} credentials on the bus authenticate, e.g. {live[0].topic} {live[0].where}"
    # The keys this run (and the whole suite) acted with appear nowhere, nor what verifies their signatures.
    for key in (token, ADMIN_KEY.token):
        secret = key.split("_", 2)[2]
        verifier = signing_key(secret)
        needles = [secret.encode(), verifier.hex().encode(), base64.b64encode(verifier)]
        for record in records:
            for raw in [bytes(v) for _, v in record.headers or ()] + [bytes(record.value or b"")]:
                assert not any(needle in raw for needle in needles), (record.topic, record.offset)
