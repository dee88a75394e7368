"""The MCP endpoint's life: the SDK loads on the first keyed request, and a dead session manager comes back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from pymongo import AsyncMongoClient

from query.app import build_app as build_query
from query.config import QuerySettings
from query.mcp import server as mcp_server
from shared.chassis.kafka import ensure_topics
from tests.factories import store_admin_key
from tests.imports import modules_loaded_by
from tests.infra import Infra
from tests.integration.key_owner import asking_registration_for_keys
from tests.integration.restarting import ADMIN, restarts, running, shared_settings, wait_ready
from tests.waiting import until

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
    assert [m for m in modules_loaded_by("query.app") if m.split(".")[0] == "mcp"] == []


async def query_with_admin(infra: Infra, db_name: str) -> QuerySettings:
    """The query's settings, its topics made, and the admin key stored in the test's database."""
    settings = QuerySettings(**shared_settings(infra, db_name))
    await ensure_topics(settings, partitions=1)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    await store_admin_key(client[db_name])
    await client.close()
    return settings


async def test_the_sdk_loads_on_the_first_keyed_request_which_it_answers(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = await query_with_admin(infra, db_name)
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


async def test_an_mcp_endpoint_whose_session_manager_died_is_restarted_and_answers_again(
    infra: Infra, db_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's session manager runs once per instance: restarted as it was, the task died again at
    # once, for ever, and /mcp answered 503 "starting or stopping".
    settings = await query_with_admin(infra, db_name)
    died: list[str] = []

    async def serve_then_fail_once() -> None:
        if not died:  # while its session manager runs, as a failure of its task group would
            died.append("mcp")
            raise RuntimeError("the session manager's task group failed (injected)")
        await anyio.sleep_forever()

    monkeypatch.setattr(mcp_server, "anyio", SimpleNamespace(sleep_forever=serve_then_fail_once))
    before = restarts("mcp")
    async with asking_registration_for_keys(settings) as asking, running(build_query(asking), "http://query") as http:
        await wait_ready(http)
        await http.post("/mcp", json=INITIALIZE, headers=MCP_ACCEPT)  # loads the SDK and starts its sessions, which die
        await until(lambda: asyncio.sleep(0, restarts("mcp") > before), what="the MCP task restarted")
        answer = await http.post("/mcp", json=INITIALIZE, headers=MCP_ACCEPT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["serverInfo"]["name"]
    assert died == ["mcp"]
