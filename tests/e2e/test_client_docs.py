"""docs/client.md runs as written: every ``python`` block, in order, against the running stack (and README's example).

The blocks use team ``fraud``; the test gives them a fresh team instead (a session's stack is
shared), a key of it with every team scope, and the stack's URLs through the environment the
client reads. They run in a thread: the sync client blocks, and the event loop must keep draining
the services' log pipes.
"""

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from registry_client import NotFound, RegistryClient
from tests.http_tools import team_key
from tests.waiting import until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DOC, README = ROOT / "docs" / "client.md", ROOT / "README.md"
TEAM_SCOPES = ["models:read", "models:write", "models:approve", "team:admin", "deployments:write", "audit:read"]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def for_team(code: str, team: str) -> str:
    return code.replace('"fraud"', f'"{team}"').replace('"fraud/', f'"{team}/')


def run_blocks(blocks: list[str], source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_client"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{source} block {number}", "exec"), namespace)
        except Exception as failure:
            raise AssertionError(f"block {number} of {source} failed:\n{block}") from failure
    return namespace


async def as_a_new_team(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A fresh team and its key, which the client reads from the environment with the stack's URLs."""
    team = f"doc-{uuid.uuid4().hex[:8]}"
    key = await team_key(stack, team, TEAM_SCOPES)
    monkeypatch.setenv("REGISTRY_API_KEY", key)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", stack.settings.kafka_bootstrap)
    for service in ("registration", "query", "deploy-tracker", "audit"):
        monkeypatch.setenv(f"REGISTRY_{service.upper().replace('-', '_')}_URL", stack.url(service))
    return team, key


async def test_every_example_of_the_client_guide_runs(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> None:
    team, key = await as_a_new_team(stack, monkeypatch)
    blocks = [for_team(block, team) for block in python_blocks(DOC.read_text())]
    assert len(blocks) >= 8 and all(team in block for block in blocks)

    namespace = await asyncio.to_thread(run_blocks, blocks, "docs/client.md")

    assert namespace["latest"].version == "1.4.0" and namespace["again"].version == "1.5.0"
    assert namespace["outcome"].status == "deployed" and len(namespace["command_ids"]) == 2

    def published_version_readable() -> bool:
        with RegistryClient(key, query_url=stack.url("query")) as client:
            try:
                return client.get_version(team, "card-fraud-xgb", "1.6.0").version == "1.6.0"
            except NotFound:
                return False

    async def readable() -> bool:
        return await asyncio.to_thread(published_version_readable)

    await until(readable, what="the version published over Kafka readable")


async def test_the_readmes_client_example_runs(stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> None:
    team, _ = await as_a_new_team(stack, monkeypatch)
    section = README.read_text().split("## Python client", 1)[1].split("\n## ", 1)[0]
    [block] = python_blocks(section)
    namespace = await asyncio.to_thread(run_blocks, [for_team(block, team)], "README.md")
    assert namespace["version"].version == "2.0.0"  # the duplicate was refused, and caught as written
