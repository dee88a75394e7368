"""Service logs: JSON lines with who, what and where, and never a secret."""

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.kafka_tools import publish_raw
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}


def log_lines(stack: EmbeddedStack) -> list[tuple[str, str]]:
    """(file name, line) of every service log the stack wrote (not Prometheus', Alertmanager's or nginx's)."""
    lines = []
    for path in sorted(Path(stack.settings.data_dir, "logs").glob("*.log")):
        if path.stem not in stack.services:
            continue
        lines += [(path.name, line) for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines


async def _answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


async def test_logs_are_structured_and_hold_no_secret(stack: EmbeddedStack) -> None:
    receiver = await asyncio.start_server(_answer_ok, "127.0.0.1", 0)  # a webhook receiver that accepts
    receiver_port = receiver.sockets[0].getsockname()[1]
    try:
        await _scenario(stack, receiver_port)
    finally:
        receiver.close()


async def _scenario(stack: EmbeddedStack, receiver_port: int) -> None:
    team = f"lg{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN, timeout=10) as http:
        created = await http.post(
            f"/v1/teams/{team}/api-keys", json={"name": "ci", "scopes": ["team:admin", "models:write", "models:read"]}
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        wrong = f"mr_{token[3:11]}_{'x' * 43}"  # a real key id with a wrong secret
        own = {"Authorization": f"Bearer {token}"}
        body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
        written = await http.post(f"/v1/models/{team}/m/versions", json=body, headers=own)
        assert written.status_code == 201, written.text
        refused = await http.post(
            f"/v1/models/{team}/m/versions", json=body, headers={"Authorization": f"Bearer {wrong}"}
        )
        assert refused.status_code == 401
    async with httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=own, timeout=10) as tracker:
        url_token = uuid.uuid4().hex  # receivers often put a token in the URL: it must not be logged either
        subscription = {"url": f"http://127.0.0.1:{receiver_port}/h?token={url_token}", "event_types": ["*"]}
        hook = await tracker.post(f"/v1/teams/{team}/webhooks", json=subscription)
        assert hook.status_code == 201, hook.text
        webhook_secret, hook_id = hook.json()["secret"], hook.json()["id"]
    commands = [register_event(team, "k", "2.0.0", token=token), register_event(team, "k", "2.0.1", token=wrong)]
    await publish_raw(
        stack.settings.kafka_bootstrap,
        "registry.commands",
        [(*binary_record(c), f"{team}/k".encode()) for c in commands],
    )

    secrets = {
        "new key": token,
        "wrong key": wrong,
        "admin key": ADMIN_KEY.token,
        "webhook secret": webhook_secret,
        "webhook URL token": url_token,
    }
    secrets |= {
        f"{name} secret part": value.split("_", 2)[-1] for name, value in secrets.items() if value.startswith("mr_")
    }
    async with httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=own, timeout=10) as tracker:

        async def logged_and_delivered() -> list[tuple[str, str]] | None:
            lines = log_lines(stack)
            outcome_logged = any(
                entry.get("event") == "command handled" and entry.get("team") == team
                for entry in (json.loads(line) for _, line in lines)
            )
            deliveries = (await tracker.get(f"/v1/teams/{team}/webhooks/{hook_id}/deliveries")).json()["items"]
            delivered = any(delivery["status"] == "delivered" for delivery in deliveries)
            return lines if outcome_logged and delivered else None

        # Reading every log file is not free: a few times a second is enough.
        lines = await until(
            logged_and_delivered, timeout=30, interval=0.2, what="the outcome logged and the webhook delivered"
        )
    parsed: list[dict[str, Any]] = [json.loads(line) for _, line in lines]
    for name, line in lines:
        for what, secret in secrets.items():
            assert secret not in line, f"{what} appears in {name}: {line[:200]}"

    assert all({"service", "level", "timestamp", "event"} <= entry.keys() for entry in parsed)
    request = [
        e
        for e in parsed
        if e.get("event") == "request handled" and e.get("team") == team and e["service"] == "registration"
    ]
    assert request and request[0]["route"] == "/v1/models/{team}/{name}/versions" and request[0]["correlation_id"]
    assert request[0]["status"] == 201 and request[0]["method"] == "POST"
    handled = [e for e in parsed if e.get("event") == "command handled" and e.get("team") == team]
    assert handled, "the consumer's outcome line names the sender's team"
    assert {"topic", "partition", "offset", "correlation_id"} <= handled[0].keys()
    assert handled[0]["topic"] == "registry.commands"
