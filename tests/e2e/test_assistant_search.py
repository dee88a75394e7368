"""Assistant search over the running stack: the index follows registry.events, within what a team reads."""

import uuid
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY
from tests.http_tools import register, team_key, team_name
from tests.waiting import until

pytestmark = pytest.mark.e2e
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}


async def key(stack: EmbeddedStack, owner: str, scopes: list[str]) -> dict[str, str]:
    """The headers of a new key of ``owner``."""
    return {"Authorization": f"Bearer {await team_key(stack, owner, scopes, name='search')}"}


async def search(stack: EmbeddedStack, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers, timeout=10) as http:
        response = await http.get("/v1/assistant/search", params=params)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def names(page: dict[str, Any]) -> list[str]:
    return [item["model"]["name"] for item in page["items"]]


async def test_a_registration_becomes_searchable_with_snippets(stack: EmbeddedStack) -> None:
    owner = team_name("s")
    reader = await key(stack, owner, ["models:read"])
    word = f"zeb{uuid.uuid4().hex[:6]}"  # a word no other test's model has
    await register(stack, ADMIN_KEY.token, owner, "card-fraud", description=f"Detects {word} card fraud in real time")

    async def found() -> dict[str, Any] | None:
        page = await search(stack, reader, q=word)
        return page if page["total"] else None

    page = await until(found, what="the new model in search")
    [hit] = page["items"]
    assert hit["model"]["name"] == "card-fraud" and hit["latest_version"]["version"] == "1.0.0"
    assert hit["score"] > 0 and f"<b>{word}</b>" in hit["snippets"]["description"]["html"]
    assert page["facets"]["framework"] == {"xgboost": 1} and page["facets"]["team"] == {owner: 1}
    typo = word[:4] + word[5:] if len(word) > 6 else word  # one letter dropped: still found
    assert names(await search(stack, reader, q=typo)) == ["card-fraud"]
    assert names(await search(stack, reader, q=word[:5])) == ["card-fraud"]  # prefix, as you type
    assert names(await search(stack, reader, q=f'"{word} card fraud"')) == ["card-fraud"]
    assert names(await search(stack, reader, q=f"{word} framework:onnx")) == []


async def test_another_teams_hidden_model_is_neither_shown_nor_counted_until_shared(stack: EmbeddedStack) -> None:
    owner, other = team_name("s"), team_name("s")
    word = f"yak{uuid.uuid4().hex[:6]}"
    await register(
        stack, ADMIN_KEY.token, owner, "hidden-model", description=f"{word} secret forecasting", framework="onnx"
    )
    await register(stack, ADMIN_KEY.token, other, "own-model", description=f"{word} public forecasting")
    theirs = await key(stack, other, ["models:read"])

    async def both_indexed() -> bool:
        return bool((await search(stack, ADMIN, q=word))["total"] == 2)

    await until(both_indexed, what="both models indexed")
    page = await search(stack, theirs, q=word)
    assert names(page) == ["own-model"] and page["total"] == 1
    assert "onnx" not in page["facets"]["framework"] and owner not in page["facets"]["team"]

    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        assert (await http.put(f"/v1/models/{owner}/hidden-model/shares/{other}")).status_code == 200

    async def shared() -> bool:
        return bool((await search(stack, theirs, q=word))["total"] == 2)

    await until(shared, what="the shared model in the other team's search")
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        assert (await http.delete(f"/v1/models/{owner}/hidden-model/shares/{other}")).status_code == 204

    async def unshared() -> bool:
        page = await search(stack, theirs, q=word)
        return names(page) == ["own-model"] and owner not in page["facets"]["team"]

    await until(unshared, what="the unshared model gone from the other team's search and facets")


async def test_bad_queries_and_cursors_are_refused_precisely(stack: EmbeddedStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN, timeout=10) as http:
        too_long = await http.get("/v1/assistant/search", params={"q": "x" * 600})
        bad_cursor = await http.get("/v1/assistant/search", params={"q": "fraud", "cursor": "bm90LWEtY3Vyc29y"})
        no_key = await http.get("/v1/assistant/search", params={"q": "fraud"}, headers={"Authorization": ""})
    assert too_long.status_code == 422 and bad_cursor.status_code == 422
    assert bad_cursor.headers["content-type"] == "application/problem+json"
    assert no_key.status_code == 401
