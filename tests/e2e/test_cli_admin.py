"""``registry keys`` and ``registry audit verify`` against the running stack's database."""

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY

pytestmark = pytest.mark.e2e
REGISTRY = str(Path(sys.executable).with_name("registry"))


async def cli(stack: EmbeddedStack, *args: str) -> tuple[int, str]:
    env = {**os.environ, "MONGODB_URI": stack.settings.mongodb_uri}
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
        code, out = await cli(stack, "keys", "revoke", created["key_id"])
        assert code == 0, out
        await asyncio.sleep(1.2)  # the key cache of the test stack is 1 s
        assert (await http.get("/v1/models")).status_code == 401


async def test_unknown_scopes_are_refused(stack: EmbeddedStack) -> None:
    code, out = await cli(stack, "keys", "create", "--team", "cli-team", "--scope", "everything")
    assert code != 0 and "unknown scopes" in out


async def test_audit_verify_passes_on_an_untouched_log(stack: EmbeddedStack) -> None:
    code, out = await cli(stack, "audit", "verify", "--data-dir", str(stack.settings.data_dir))
    assert code == 0, out
    assert json.loads(out)["ok"] is True


async def test_audit_verify_with_another_key_finds_the_chain_broken(stack: EmbeddedStack) -> None:
    code, out = await cli(stack, "audit", "verify", "--chain-key", "x" * 32)
    assert code == 1 and json.loads(out)["ok"] is False


async def test_security_counters_are_exported(stack: EmbeddedStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("query")) as http:
        await http.get("/v1/models", headers={"Authorization": "Bearer mr_nope"})
        await http.get("/v1/models", headers={"Authorization": f"Bearer {ADMIN_KEY.token}"})
        metrics = (await http.get("/metrics")).text
    assert 'registry_auth_failures_total{reason="malformed",service="query"}' in metrics
    assert "registry_access_denied_total" in metrics and "registry_rate_limited_total" in metrics


async def test_produce_publishes_a_command_and_a_deploy_report_in_one_line(stack: EmbeddedStack) -> None:
    team = f"cli-{uuid.uuid4().hex[:6]}"
    env_args = ("--api-key", ADMIN_KEY.token, "--bootstrap-servers", stack.settings.kafka_bootstrap)
    register = {"team": team, "name": "m", "version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
    code, out = await cli(stack, "produce", "register", "--data", json.dumps(register), *env_args)
    assert code == 0 and len(out.strip()) == 32, out
    report = {
        "team": team,
        "name": "m",
        "version": "1.0.0",
        "environment": "prod",
        "status": "deploying",
        "occurred_at": "2026-11-26T10:00:00Z",
    }
    async with httpx.AsyncClient(
        base_url=stack.url("query"), headers={"Authorization": f"Bearer {ADMIN_KEY.token}"}
    ) as http:
        for _ in range(200):
            if (await http.get(f"/v1/models/{team}/m/versions/1.0.0")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        code, out = await cli(stack, "produce", "deploy", "--data", json.dumps(report), *env_args)
        assert code == 0, out
        for _ in range(200):
            version = (await http.get(f"/v1/models/{team}/m/versions/1.0.0")).json()
            assert "environments" in version, version
            if version["environments"].get("prod", {}).get("status") == "deploying":
                break
            await asyncio.sleep(0.05)
    assert version["status"] == "deploying"
