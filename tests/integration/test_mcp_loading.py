"""The query service loads the MCP SDK when the first keyed request reaches ``/mcp``, not at start."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from query.app import build_app as build_query
from query.config import QuerySettings
from query.mcp import server as mcp_server
from shared.chassis.kafka import ensure_topics
from tests.factories import store_admin_key
from tests.infra import Infra
from tests.integration.key_owner import asking_registration_for_keys
from tests.integration.restarting import ADMIN, running, shared_settings, wait_ready

pytestmark = pytest.mark.integration

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_building_the_query_app_imports_no_part_of_the_sdk() -> None:
    # In a fresh interpreter: this test process has the SDK loaded by other tests.
    script = "import sys; import query.app; print(sorted(m for m in sys.modules if m.split('.')[0] == 'mcp'))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "[]"


async def test_the_sdk_loads_on_the_first_keyed_request_which_it_answers(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = QuerySettings(**shared_settings(infra, db_name))
    await ensure_topics(settings)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name])
    await client.close()
    loads: list[str] = []
    load = mcp_server._load_sdk

    def counted_load() -> Any:
        loads.append("sdk")
        return load()

    monkeypatch.setattr(mcp_server, "_load_sdk", counted_load)
    async with (
        asking_registration_for_keys(settings) as asking,
        running(build_query(asking), "http://query", headers={}) as http,
    ):
        await wait_ready(http)
        refused = await http.post("/mcp", json=INITIALIZE, headers=MCP_ACCEPT)  # no key: refused before loading
        assert (refused.status_code, loads) == (401, [])
        first = await http.post("/mcp", json=INITIALIZE, headers={**MCP_ACCEPT, **ADMIN})
        second = await http.post("/mcp", json=INITIALIZE, headers={**MCP_ACCEPT, **ADMIN})
    assert first.status_code == 200, first.text
    assert first.json()["result"]["serverInfo"]["name"]
    assert second.status_code == 200
    assert loads == ["sdk"]
