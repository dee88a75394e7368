"""``registry keys`` (through the registration service) and ``registry audit verify`` (the audit database)."""

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.signing import SigningKey
from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY
from tests.metrics_tools import scrape, total
from tests.waiting import until

pytestmark = pytest.mark.e2e
REGISTRY = str(Path(sys.executable).with_name("registry"))
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
KEY_CACHE_SECONDS = 1  # set for the test stack in conftest


async def cli(stack: EmbeddedStack, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "MONGODB_URI": stack.settings.mongodb_uri,
        "AUDIT_MONGODB_URI": stack.settings.audit_mongodb_uri,  # the audit log's own server
        "REGISTRY_API_KEY": ADMIN_KEY.token,
        "REGISTRY_REGISTRATION_URL": stack.url("registration"),
        "REGISTRY_AUDIT_URL": stack.url("audit"),
    }
    env.pop("REGISTRY_GATEWAY_URL", None)
    process = await asyncio.create_subprocess_exec(
        REGISTRY, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_keys_made_by_the_cli_work_list_without_secrets_and_revoke(stack: EmbeddedStack) -> None:
    code, out = await cli(stack, "keys", "create", "--team", "cli-team", "--scope", "models:read", "--name", "ci")
    assert code == 0, out
    created = json.loads(out)
    headers = {"Authorization": f"Bearer {created['token']}"}
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers) as http:
        assert (await http.get("/v1/models")).status_code == 200
        code, out = await cli(stack, "keys", "list", "--team", "cli-team")
        assert code == 0 and created["key_id"] in out and created["token"] not in out
        code, out = await cli(stack, "keys", "revoke", created["key_id"], "--team", "cli-team")
        assert code == 0, out

        async def refused() -> bool:
            return (await http.get("/v1/models")).status_code == 401

        # Services cache keys for KEY_CACHE_SECONDS (1 s in the test stack): refused within that, plus slack.
        await until(refused, timeout=KEY_CACHE_SECONDS + 1, what="the revoked key refused")


async def test_keys_made_and_revoked_by_the_cli_are_in_the_teams_audit_log_with_their_actor(
    stack: EmbeddedStack,
) -> None:
    # The CLI goes through registration's API, so its keys leave the same trace as any other.
    team = f"cli-{uuid.uuid4().hex[:6]}"
    code, out = await cli(stack, "keys", "create", "--team", team, "--scope", "models:read", "--name", "ci")
    assert code == 0, out
    created = json.loads(out)
    code, out = await cli(stack, "keys", "revoke", created["key_id"], "--team", team)
    assert code == 0, out
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:

        async def audited() -> dict[str, dict[str, Any]] | None:
            items = (await http.get("/v1/audit", params={"team": team})).json()["items"]
            found = {e["type"]: e for e in items if e["type"].startswith("registry.event.api_key_")}
            return found if len(found) == 2 else None

        found = await until(audited, timeout=30, what="the CLI's key created and revoked in the audit log")
    for entry in found.values():
        assert (entry["actor"], entry["actor_team"], entry["expires_at"]) == (ADMIN_KEY.key_id, "platform", None)
        assert created["key_id"] in entry["detail"]
        assert created["token"].rsplit("_", 1)[1] not in json.dumps(entry)


async def test_a_key_revoked_by_the_cli_must_name_its_team(stack: EmbeddedStack) -> None:
    code, out = await cli(stack, "keys", "revoke", "abcd1234", "--team", "nobody-here")
    assert code != 0 and "abcd1234" in out


async def test_unknown_scopes_are_refused(stack: EmbeddedStack) -> None:
    code, out = await cli(stack, "keys", "create", "--team", "cli-team", "--scope", "everything")
    assert code != 0 and "unknown scopes" in out


async def test_audit_verify_passes_on_an_untouched_log(stack: EmbeddedStack) -> None:
    code, out = await cli(stack, "audit", "verify", "--data-dir", str(stack.settings.data_dir))
    assert code == 0, out
    verdict = json.loads(out)
    assert verdict["ok"] is True and verdict["entries"] > 0, verdict


async def test_audit_verify_with_another_public_key_finds_the_chain_broken(stack: EmbeddedStack) -> None:
    other = SigningKey.generate().public.raw.hex()
    code, out = await cli(stack, "audit", "verify", "--public-key", other, "--data-dir", str(stack.settings.data_dir))
    assert code == 1 and "sign" in json.loads(out)["first_broken"]["problem"]  # a head or a signed entry


async def test_security_counters_move_by_what_was_refused(stack: EmbeddedStack) -> None:
    team = f"sec-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        lacking = await http.post(f"/v1/teams/{team}/api-keys", json={"name": "l", "scopes": ["deployments:write"]})
        limit = {"per_second": 0.01, "burst": 2}  # two requests, then none for 100 s
        limited = await http.post(
            f"/v1/teams/{team}/api-keys", json={"name": "r", "scopes": ["models:read"], "rate_limit": limit}
        )
    assert lacking.status_code == limited.status_code == 201, (lacking.text, limited.text)
    before, _ = await scrape(stack.url("query"))
    async with httpx.AsyncClient(base_url=stack.url("query")) as http:
        malformed = await http.get("/v1/models", headers={"Authorization": "Bearer mr_nope"})
        denied = await http.get("/v1/models", headers={"Authorization": f"Bearer {lacking.json()['token']}"})
        burst = [
            (await http.get("/v1/models", headers={"Authorization": f"Bearer {limited.json()['token']}"})).status_code
            for _ in range(5)
        ]
    assert (malformed.status_code, denied.status_code, burst) == (401, 403, [200, 200, 429, 429, 429])
    after, _ = await scrape(stack.url("query"))

    def moved(name: str, **labels: str) -> float:
        return total(after, name, service="query", **labels) - total(before, name, service="query", **labels)

    assert moved("registry_auth_failures_total", reason="malformed") == 1
    assert moved("registry_access_denied_total", team=team, reason="missing scope models:read") == 1
    assert moved("registry_rate_limited_total", team=team) == 3


async def test_produce_publishes_a_command_and_a_deploy_report_in_one_line(stack: EmbeddedStack) -> None:
    team = f"cli-{uuid.uuid4().hex[:6]}"
    env_args = ("--api-key", ADMIN_KEY.token, "--bootstrap-servers", stack.settings.kafka_bootstrap)
    register = {"team": team, "name": "m", "version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
    code, out = await cli(stack, "produce", "register", "--data", json.dumps(register), *env_args)
    event_id, hint = out.strip().splitlines()  # the id on stdout; on stderr, how to find the outcome
    assert code == 0 and len(event_id) == 32 and "not yet applied" in hint, out
    correlation_id = hint.split("--correlation-id ")[1].split()[0]
    report = {
        "team": team,
        "name": "m",
        "version": "1.0.0",
        "environment": "staging",
        "status": "deploying",
        "occurred_at": "2026-11-26T10:00:00Z",
    }
    path = f"/v1/models/{team}/m/versions/1.0.0"
    async with httpx.AsyncClient(
        base_url=stack.url("query"), headers={"Authorization": f"Bearer {ADMIN_KEY.token}"}
    ) as http:

        async def registered() -> bool:
            return (await http.get(path)).status_code == 200

        await until(registered, what="the produced registration readable")

        async def outcome_audited() -> list[dict[str, Any]] | None:
            code, out = await cli(stack, "audit", "list", "--team", team, "--correlation-id", correlation_id, "--json")
            assert code == 0, out
            entries: list[dict[str, Any]] = json.loads(out)
            return entries if any(e["type"].endswith("model_version_registered") for e in entries) else None

        # The hint's lookup finds the command and its outcome, and nothing of another operation.
        entries = await until(outcome_audited, what="the outcome found by the printed correlation id")
        assert {entry["correlation_id"] for entry in entries} == {correlation_id}
        code, out = await cli(stack, "produce", "deploy", "--data", json.dumps(report), *env_args)
        assert code == 0, out
        report_id = out.strip().splitlines()[0]

        async def deployed() -> dict[str, Any] | None:
            version: dict[str, Any] = (await http.get(path)).json()
            return version if version["environments"] else None

        version = await until(deployed, what="the produced deploy report applied")
    assert version["status"] == "deploying"
    [(environment, state)] = version["environments"].items()
    assert (environment, state["status"], state["report_id"]) == ("staging", "deploying", report_id)
    assert datetime.fromisoformat(state["occurred_at"]) == datetime(2026, 11, 26, 10, tzinfo=UTC)
