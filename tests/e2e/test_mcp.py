"""The MCP server through the running stack: the SDK's own clients over real HTTP and over stdio."""

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, TextResourceContents

from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from tests.factories import ADMIN_KEY
from tests.http_tools import Team, register, team_key, team_name
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
SCOPES = ["models:read", "models:write", "deployments:write", "audit:read"]
TOOLS = {"search_models", "get_model", "list_versions", "get_model_card", "get_deployment_status", "compare_versions"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@asynccontextmanager
async def mcp_session(stack: EmbeddedStack, token: str, **headers: str) -> AsyncIterator[ClientSession]:
    """An initialized session of the SDK's Streamable HTTP client, sending ``token`` on every request."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)
    async with (
        http,
        streamable_http_client(f"{stack.url('query')}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text(result: CallToolResult) -> str:
    [block] = result.content
    assert isinstance(block, TextContent)
    return block.text


def failure(result: CallToolResult, *names: str) -> str:
    """The error text of a failed call, with ``names`` replaced so hidden and absent models compare."""
    assert result.is_error, result
    message = text(result)
    for name in names:
        message = message.replace(name, "NAME")
    return message


@pytest.fixture
async def scorer(stack: EmbeddedStack, team: Team) -> None:
    """The team's model ``scorer``, with two versions."""
    description = "Scores card transactions for fraud"
    await register(stack, team.writer, team.name, "scorer", "1.0.0", description=description, metrics={"auc": 0.91})
    await register(stack, team.writer, team.name, "scorer", "1.1.0", description=description, tags={"owner": "alice"})


@pytest.mark.usefixtures("scorer")
class TestToolsOverHttp:
    async def test_the_read_only_tools_are_listed_with_schemas(self, stack: EmbeddedStack, team: Team) -> None:
        async with mcp_session(stack, team.writer) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            templates = (await session.list_resource_templates()).resource_templates
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.description and tool.output_schema and tool.annotations
            assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        assert tools["get_model"].input_schema["required"] == ["team", "name"]
        assert "enum" in str(tools["search_models"].input_schema["properties"]["status"])
        assert [t.uri_template for t in templates] == ["registry://models/{team}/{name}/card"]

    async def test_models_versions_and_deployments_come_as_structured_content_and_text(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        name, token = team.name, team.writer
        report = {
            "team": name,
            "name": "scorer",
            "version": "1.1.0",
            "environment": "staging",
            "status": "deploying",
            "target": "kubernetes",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        async with httpx.AsyncClient(
            base_url=stack.url("deploy-tracker"), headers={"Authorization": f"Bearer {token}"}
        ) as http:
            assert (await http.post("/v1/deployments/events", json=report)).status_code == 202
        async with mcp_session(stack, token) as session:
            model = await session.call_tool("get_model", {"team": name, "name": "scorer"})
            versions = await session.call_tool("list_versions", {"team": name, "name": "scorer", "limit": 1})
            more = await session.call_tool(
                "list_versions", {"team": name, "name": "scorer", "cursor": versions.structured_content["next_cursor"]}
            )

            async def deployed() -> CallToolResult | None:
                status = await session.call_tool("get_deployment_status", {"team": name, "name": "scorer"})
                return status if status.structured_content["status"] == "deploying" else None

            status = await until(deployed, what="the deployment report in get_deployment_status")
        assert not model.is_error and model.structured_content["latest_version"] == "1.1.0"
        assert model.structured_content["version_count"] == 2 and "owner=alice" in text(model)
        assert [v["version"] for v in versions.structured_content["items"]] == ["1.1.0"]
        assert [v["version"] for v in more.structured_content["items"]] == ["1.0.0"]
        assert "cursor=" in text(versions) and "auc=0.91" in text(more)
        assert status.structured_content["version"] == "1.1.0"
        assert status.structured_content["environments"]["staging"]["target"] == "kubernetes"
        assert "- staging: deploying on kubernetes" in text(status)

    async def test_a_refusal_is_a_tool_error_with_the_problems_detail(self, stack: EmbeddedStack, team: Team) -> None:
        name, token = team.name, team.writer
        async with mcp_session(stack, token) as session:
            absent = await session.call_tool("get_model", {"team": name, "name": "nothing-here"})
            no_version = await session.call_tool(
                "get_deployment_status", {"team": name, "name": "scorer", "version": "9.9.9"}
            )
            bad_slug = await session.call_tool("get_model", {"team": "Not A Slug", "name": "scorer"})
        assert failure(absent) == (
            f"Error executing tool get_model: model {name}/nothing-here does not exist or is not visible to you"
            " (HTTP 404)"
        )
        assert "9.9.9" in failure(no_version) and "(HTTP 404)" in failure(no_version)
        assert "string_pattern_mismatch" in failure(bad_slug)
        assert "Traceback" not in failure(absent) + failure(no_version) + failure(bad_slug)

    async def test_a_tool_call_is_audited_as_the_read_it_makes_with_the_callers_correlation_id(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        name, token = team.name, team.writer
        correlation = f"mcp-{uuid.uuid4().hex[:10]}"
        async with mcp_session(stack, token, **{"X-Correlation-ID": correlation}) as session:
            assert not (await session.call_tool("get_model", {"team": name, "name": "scorer"})).is_error

        async def audited() -> list[dict[str, Any]]:
            async with httpx.AsyncClient(base_url=stack.url("audit"), headers=ADMIN) as http:
                response = await http.get("/v1/audit", params={"correlation_id": correlation})
            return [entry for entry in response.json()["items"] if entry["type"] == messages.ACCESS_READ]

        [entry] = await until(audited, what="the tool's read in the audit log")
        assert (entry["team"], entry["detail"]) == (name, f"GET /v1/models/{name}/scorer 200")

    async def test_model_cards_come_as_a_tool_and_as_resources(self, stack: EmbeddedStack, team: Team) -> None:
        name, token = team.name, team.writer
        async with mcp_session(stack, token) as session:
            card = await session.call_tool("get_model_card", {"team": name, "name": "scorer"})
            older = await session.call_tool("get_model_card", {"team": name, "name": "scorer", "version": "1.0.0"})
            resource = await session.read_resource(f"registry://models/{name}/scorer/card")
        assert not card.is_error and text(card) == card.structured_content["markdown"]
        assert f"{name}/scorer" in text(card) and "Scores card transactions" in text(card)
        assert "auc" in text(older)
        [contents] = resource.contents
        assert isinstance(contents, TextResourceContents) and contents.mime_type == "text/markdown"
        assert contents.text == text(card)

    async def test_search_ranks_what_the_caller_may_read(self, stack: EmbeddedStack, team: Team) -> None:
        name, token = team.name, team.writer
        async with mcp_session(stack, token) as session:

            async def found() -> CallToolResult | None:
                result = await session.call_tool("search_models", {"query": "fraud transactions", "team": name})
                if result.is_error or not result.structured_content["items"]:
                    return None
                # The index follows the events: it may hold the model before its second version.
                latest = result.structured_content["items"][0]["latest_version"]["version"]
                return result if latest == "1.1.0" else None

            result = await until(found, what="the new model searchable at its latest version")
        [hit] = result.structured_content["items"]
        assert (hit["model"]["team"], hit["model"]["name"]) == (name, "scorer")
        assert hit["latest_version"]["version"] == "1.1.0" and hit["snippets"]
        assert f"1. {name}/scorer" in text(result)


@pytest.mark.usefixtures("scorer")
class TestTeamIsolation:
    async def test_another_teams_hidden_model_is_a_tool_error_like_an_absent_one(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        owner = team.name
        other = team_name("mcp")
        other_token = await team_key(stack, other, SCOPES)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_model", {}),
            ("list_versions", {}),
            ("get_deployment_status", {}),
            ("get_deployment_status", {"version": "1.0.0"}),
            ("get_model_card", {}),
        ]
        async with mcp_session(stack, other_token) as session:
            for tool, extra in calls:
                hidden = await session.call_tool(tool, {"team": owner, "name": "scorer", **extra})
                absent = await session.call_tool(tool, {"team": owner, "name": "nothing-here", **extra})
                assert failure(hidden, "scorer") == failure(absent, "nothing-here"), tool
                assert "does not exist or is not visible to you" in failure(hidden), tool
            with pytest.raises(MCPError, match="not visible to you"):
                await session.read_resource(f"registry://models/{owner}/scorer/card")

    async def test_search_neither_shows_nor_counts_another_teams_hidden_model(
        self, stack: EmbeddedStack, team: Team
    ) -> None:
        owner, owner_token = team.name, team.writer
        other = team_name("mcp")
        other_token = await team_key(stack, other, SCOPES)
        word = f"zq{uuid.uuid4().hex[:8]}"
        await register(stack, owner_token, owner, "hidden", "1.0.0", description=f"{word} hidden model")
        # The sentinel: the other team's own model, registered after the hidden one, with the same word.
        await register(stack, other_token, other, "visible", "1.0.0", description=f"{word} visible model")
        async with mcp_session(stack, other_token) as session:

            async def found() -> CallToolResult | None:
                result = await session.call_tool("search_models", {"query": word})
                return result if not result.is_error and result.structured_content["items"] else None

            result = await until(found, what="the sentinel searchable")
        teams = {hit["model"]["team"] for hit in result.structured_content["items"]}
        assert teams == {other} and owner not in str(result.structured_content["facets"]) and owner not in text(result)


class TestAuthentication:
    async def test_a_request_without_a_valid_key_is_refused_before_the_session_starts(
        self, stack: EmbeddedStack
    ) -> None:
        headers = {"Accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers) as http:
            missing = await http.post("/mcp", json=INITIALIZE)
            invalid = await http.post("/mcp", json=INITIALIZE, headers={"Authorization": "Bearer mr_nokey_" + "x" * 43})
        for response in (missing, invalid):
            assert response.status_code == 401, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"].startswith("a valid API key, or an OpenID Connect token")
            assert "mcp-session-id" not in response.headers

    async def test_the_sdk_client_cannot_open_a_session_without_a_valid_key(self, stack: EmbeddedStack) -> None:
        # The SDK reports any non-2xx answer to initialize as this one error (the 401 itself is checked above).
        refused = pytest.RaisesExc(MCPError, match="Server returned an error response")
        with pytest.RaisesGroup(refused, flatten_subgroups=True):
            async with mcp_session(stack, "mr_nokey_" + "x" * 43):
                pass


@pytest.mark.usefixtures("scorer")
class TestStdio:
    async def test_registry_mcp_serves_the_same_tools_over_stdio(self, stack: EmbeddedStack, team: Team) -> None:
        name, token = team.name, team.writer
        command = Path(sys.executable).with_name("registry")
        server = StdioServerParameters(
            command=str(command), args=["mcp", "--url", stack.url("query"), "--api-key", token]
        )
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name for tool in (await session.list_tools()).tools}
            model = await session.call_tool("get_model", {"team": name, "name": "scorer"})
            hidden = await session.call_tool("get_model", {"team": "other-team", "name": "scorer"})
        async with mcp_session(stack, token) as over_http:
            same = await over_http.call_tool("get_model", {"team": name, "name": "scorer"})
        assert tools == TOOLS
        assert model.structured_content == same.structured_content and text(model) == text(same)
        assert "does not exist or is not visible to you" in failure(hidden)


async def test_a_tool_call_takes_one_rate_limit_token(stack: EmbeddedStack) -> None:
    # A tool call takes the MCP request's rate-limit token, not a second one for the route the tool runs.
    limit = {"per_second": 0.001, "burst": 20}
    token = await team_key(stack, team_name("mcp-rl"), SCOPES, name="limited", rate_limit=limit)
    async with mcp_session(stack, token) as session:  # initialize and its notification: a few tokens
        results = [await session.call_tool("search_models", {"query": "anything"}) for _ in range(12)]
    assert not any(result.is_error for result in results), [text(r) for r in results if r.is_error]
