"""One URL for everything: the client, the console and MCP through the gateway (real nginx, TLS) to the real stack."""

import ssl
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from registry_client import AsyncRegistryClient
from tests.e2e.console_tools import new_team, sign_in
from tests.factories import ADMIN_KEY
from tests.waiting import until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def gateway(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    await stack.start_gateway()
    # The client trusts the stack's own CA the standard way (httpx reads SSL_CERT_FILE).
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.settings.data_dir / "tls" / "ca.pem"))
    for service in ("REGISTRATION", "QUERY", "DEPLOY_TRACKER", "AUDIT"):
        monkeypatch.delenv(f"REGISTRY_{service}_URL", raising=False)
    try:
        yield stack.gateway_url
    finally:
        await stack.stop_gateway()


async def test_the_client_does_everything_through_one_url(gateway: str) -> None:
    team = f"gw{uuid.uuid4().hex[:8]}"
    async with AsyncRegistryClient(ADMIN_KEY.token, gateway_url=gateway) as registry:
        # registration (a write under /v1/models), then query (a read of the same path)
        created = await registry.register_version(
            team, "ranker", "1.0.0", framework="onnx", artifact_uri="s3://bucket/model.onnx"
        )
        assert created.version == "1.0.0"
        assert (await registry.get_version(team, "ranker", "1.0.0")).version == "1.0.0"
        # registration: a team's keys
        key = await registry.create_api_key(team, "ci", ["models:read", "deployments:write"])
        assert key.token.startswith("mr_")
        # deploy-tracker: a webhook subscription, then a deployment report through the bridge
        hook = await registry.create_webhook(team, "http://127.0.0.1:9/hook", ["*"])
        assert hook.secret.startswith("whsec_")
        outcome = await registry.report_deployment(team, "ranker", "1.0.0", "staging", "deploying", wait=10)
        assert getattr(outcome, "outcome", None) == "applied"
        # audit: the trail of what was just done, read through the same URL (chained a moment later)

        async def trail() -> list[object]:
            return [entry async for entry in registry.audit_entries(team=team, page_size=50)]

        assert await until(trail, timeout=30, what="the team's audit trail")
        assert (await registry.verify_audit()).ok


async def test_the_console_and_mcp_are_served_through_the_gateway(stack: EmbeddedStack, gateway: str) -> None:
    verify = ssl.create_default_context(cafile=str(stack.settings.data_dir / "tls" / "ca.pem"))
    async with httpx.AsyncClient(base_url=gateway, verify=verify, timeout=10) as http:
        sign_in = await http.get("/console/sign-in")
        assert sign_in.status_code == 200 and "text/html" in sign_in.headers["content-type"]
        assert sign_in.headers["strict-transport-security"].startswith("max-age=")
        mcp = await http.post(
            "/mcp",
            headers={
                "Authorization": f"Bearer {ADMIN_KEY.token}",
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
            },
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "gateway-test", "version": "1"},
                },
            },
        )
        assert mcp.status_code == 200, mcp.text
        assert "serverInfo" in mcp.text
        assert (await http.get("/metrics")).status_code == 404  # scraped inside the cluster, not at the edge
        # Registration's internal route (keys' signature verifiers) is for the services, never the edge.
        assert (await http.get(f"/internal/v1/keys/{ADMIN_KEY.key_id}/verifier")).status_code == 404


async def test_the_consoles_cookies_stay_secure_behind_the_tls_gateway(stack: EmbeddedStack, gateway: str) -> None:
    # nginx ends TLS and says so in X-Forwarded-Proto; the services believe it from their
    # TRUSTED_PROXIES only (uvicorn's own default would be any process on 127.0.0.1).
    _, key = await new_team(stack, "gwc")
    verify = ssl.create_default_context(cafile=str(stack.settings.data_dir / "tls" / "ca.pem"))
    async with httpx.AsyncClient(base_url=gateway, verify=verify, timeout=10, follow_redirects=False) as http:
        signed = await sign_in(http, key)
    assert signed.status_code == 303, signed.text
    cookies = [c.lower() for c in signed.headers.get_list("set-cookie") if c.startswith("mr_console=")]
    assert cookies and all("; secure" in cookie for cookie in cookies)
