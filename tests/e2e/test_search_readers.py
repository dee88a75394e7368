"""Search on the running stack depends on nothing the caller cannot read: other teams' private text changes nothing.

The HTTP search, MCP ``search_models`` and the console's results all answer from one search path; each is compared.
"""

import re
import uuid
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from tests.e2e.console_tools import console_client, sign_in
from tests.e2e.test_assistant_search import ADMIN, key, search
from tests.e2e.test_console import FRAGMENT
from tests.e2e.test_mcp import mcp_session, text
from tests.factories import ADMIN_KEY
from tests.http_tools import register, team_name
from tests.waiting import until

pytestmark = pytest.mark.e2e
FOREIGN_MODELS = 12


async def test_another_teams_private_models_change_nothing_in_a_readers_search(stack: EmbeddedStack) -> None:
    reader_team, other = team_name("s"), team_name("s")
    reader = await key(stack, reader_team, ["models:read"])
    word = f"qu{uuid.uuid4().hex[:7]}"  # a word no other test's model has
    typo = word[:3] + word[4:]  # one letter dropped: not a word of any readable model
    await register(
        stack, ADMIN_KEY.token, reader_team, "card-fraud", description=f"Detects {word} card fraud in real time"
    )
    await register(
        stack, ADMIN_KEY.token, reader_team, "chargebacks", description=f"Predicts {word} chargebacks on card disputes"
    )
    await register(
        stack,
        ADMIN_KEY.token,
        reader_team,
        "churn",
        framework="onnx",
        description=f"Which {word} customers cancel their card",
    )
    queries = [word, f"{word} card", f"card fraud {word} chargebacks", typo, word[:6], f'"{word} card"', f"{word} zzz"]

    async def pages() -> list[Any]:
        found: list[Any] = [await search(stack, reader, q=q) for q in queries]
        async with mcp_session(stack, reader["Authorization"].removeprefix("Bearer ")) as session:
            for q in queries[:3]:
                result = await session.call_tool("search_models", {"query": q})
                found.append((result.structured_content, text(result)))
        async with console_client(stack) as http:
            await sign_in(http, reader["Authorization"].removeprefix("Bearer "))
            for q in queries[:3]:
                found.append((await http.get("/console/search/results", params={"q": q}, headers=FRAGMENT)).text)
        return found

    async def indexed(who: dict[str, str], count: int) -> bool:
        return bool((await search(stack, who, q=word))["total"] == count)

    await until(lambda: indexed(reader, 3), what="the reader's models in search")
    alone = await pages()
    assert alone[0]["total"] == 3 and alone[0]["items"][0]["score"] > 0

    for i in range(FOREIGN_MODELS):  # private, full of the reader's words, the misspelled one included
        words = f"{word} card fraud {typo} chargebacks {'card ' * i}{word} customers {i}"
        await register(stack, ADMIN_KEY.token, other, f"private-{i}", description=words)
    await until(lambda: indexed(ADMIN, 3 + FOREIGN_MODELS), what="the private models in search")

    crowded = await pages()
    shown = [*queries, *(f"MCP {q}" for q in queries[:3]), *(f"console {q}" for q in queries[:3])]
    for q, before, after in zip(shown, alone, crowded, strict=True):
        assert after == before, f"results for {q!r} moved with another team's private models"


async def test_the_indexes_documents_are_a_metric(stack: EmbeddedStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=10) as http:
        text = (await http.get("/metrics")).text
    held = dict(re.findall(r'^registry_search_indexed_documents\{index="(\w+)"\} (\S+)$', text, re.M))
    assert float(held["teams"]) >= float(held["platform"]) > 0  # each model once per reader team, owner included
