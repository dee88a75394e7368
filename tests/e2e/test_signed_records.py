"""The tracker and the audit service check producers' signatures with verifiers fetched from registration.

A report proves its key by a signature rather than carrying it as ``authorization: Bearer mr_…``:
the audit names the key whose signature verified, and the tracker refuses bearer keys and
signatures that do not verify, saying why.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_client.kafka import registry_event
from registry_contract import messages
from shared.chassis.identity import BAD_SIGNATURE, BEARER_REFUSED
from tests.factories import ADMIN_KEY, bearer_event
from tests.http_tools import ADMIN, team_key
from tests.kafka_tools import Collector, caused_by, header, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.e2e


def _report(team: str) -> dict[str, Any]:
    return {
        "team": team,
        "name": "m",
        "version": "1.0.0",
        "environment": "staging",
        "status": "deploying",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def _audited(stack: EmbeddedStack, correlation: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
        response = await http.get("/v1/audit", params={"correlation_id": correlation, "limit": 50})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["topic"] == "registry.commands"]


async def test_the_audit_names_the_key_whose_signature_verified_and_no_forger(stack: EmbeddedStack) -> None:
    team = f"sig-{uuid.uuid4().hex[:8]}"
    token = await team_key(stack, team, ["models:write"])
    key_id = token.split("_")[1]
    data = {"team": team, "name": "m", "version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://models-b/m"}
    signed = registry_event("register", data, api_key=token, correlation_id=f"c-{uuid.uuid4().hex}")
    forger = registry_event("register", data, api_key=ADMIN_KEY.token, correlation_id=f"c-{uuid.uuid4().hex}")
    value, headers = forger.to_kafka()  # signed by another key, claiming this one
    forged = [(n, key_id.encode() if n == "ce_keyid" else r) for n, r in headers]
    await publish_raw(
        stack.settings.kafka_bootstrap,
        "registry.commands",
        [(*signed.to_kafka(), f"{team}/m".encode()), (value, forged, f"{team}/m".encode())],
    )

    async def entry(correlation: str) -> dict[str, Any] | None:
        found = await _audited(stack, correlation)
        return found[0] if found else None

    proven = await until(lambda: entry(signed.correlation_id), what="the signed command audited", timeout=30)
    unproven = await until(lambda: entry(forger.correlation_id), what="the forged command audited", timeout=30)
    assert (proven["verified"], proven["actor"], proven["actor_team"]) == ("key", key_id, team)
    assert (unproven["verified"], unproven["actor"], unproven["team"]) == (None, None, None)
    assert unproven["claims"]["actor"] == key_id  # what it said, never taken as the actor


async def test_the_tracker_refuses_bearer_keys_and_bad_signatures_saying_why(stack: EmbeddedStack) -> None:
    team = f"sig-{uuid.uuid4().hex[:8]}"
    token = await team_key(stack, team, ["deployments:write", "team:admin"])
    bearer = bearer_event(messages.DEPLOY_STATUS_REPORTED, _report(team), token=token)
    tampered_event = registry_event("deploy", _report(team), api_key=token)
    value, headers = tampered_event.to_kafka()
    tampered = value.replace(b"staging", b"prod")
    try:
        async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
            await publish_raw(
                stack.settings.kafka_bootstrap,
                "deploy.events",
                [(*bearer.to_kafka(), f"{team}/m".encode()), (tampered, headers, f"{team}/m".encode())],
            )
            [refused_bearer] = await events.wait_for(caused_by(bearer.id), timeout=30)
            [refused_tampered] = await events.wait_for(caused_by(tampered_event.id), timeout=30)
    finally:
        # The bearer record stays on deploy.events: its key must authenticate nowhere afterwards.
        async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
            revoked = await http.delete(f"/v1/teams/{team}/api-keys/{token.split('_')[1]}")
            assert revoked.status_code == 204, revoked.text
    for answer, why in ((refused_bearer, BEARER_REFUSED), (refused_tampered, BAD_SIGNATURE)):
        assert header(answer, "ce_type") == messages.COMMAND_REJECTED
        data = json.loads(answer.value)
        assert (data["reason"], data["message"]) == ("unauthenticated", why)
