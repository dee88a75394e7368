"""The RAG document feed through the running stack: sharing, tombstones, cursors, deployments, NDJSON, the CLI."""

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

from registry_cli.stack import EmbeddedStack
from registry_contract.ids import model_id
from tests.factories import ADMIN_KEY
from tests.http_tools import ADMIN, acting_as, register, team_key
from tests.waiting import until

pytestmark = pytest.mark.e2e
REGISTRY = str(Path(sys.executable).with_name("registry"))
SCOPES = ["models:read", "models:write", "team:admin", "deployments:write"]
Docs = list[dict[str, Any]]


async def feed(
    stack: EmbeddedStack, token: str, cursor: str | None = None, limit: int = 200
) -> tuple[Docs, str | None]:
    """Every document after ``cursor``, page by page, and the cursor to resume from."""
    items: Docs = []
    async with acting_as(stack, "query", token) as http:
        while True:
            params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            response = await http.get("/v1/assistant/documents", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            items, cursor = items + body["items"], body["next_cursor"]
            if not body["has_more"]:
                return items, cursor


async def feed_until(stack: EmbeddedStack, token: str, cursor: str | None, what: str, ready: Any) -> tuple[Docs, str]:
    """The feed after ``cursor`` once ``ready(items)`` holds (changes settle for a moment first)."""

    async def check() -> tuple[Docs, str] | None:
        items, after = await feed(stack, token, cursor)
        return (items, after) if ready(items) and after else None

    return await until(check, timeout=30, what=what, interval=0.2)


async def stream(stack: EmbeddedStack, token: str, cursor: str | None = None) -> tuple[Docs, str | None]:
    """The NDJSON stream: documents, and the cursor its last line carries."""
    params = {"cursor": cursor} if cursor else {}
    headers = {"Accept": "application/x-ndjson"}
    async with (
        acting_as(stack, "query", token) as http,
        http.stream("GET", "/v1/assistant/documents", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in response.aiter_lines() if line.strip()]
    *docs, end = lines
    assert set(end) == {"next_cursor"} and all("id" in doc for doc in docs)
    return docs, end["next_cursor"]


async def cli_export(stack: EmbeddedStack, token: str, *args: str) -> tuple[Docs, str | None]:
    env = {**os.environ, "REGISTRY_API_KEY": token, "REGISTRY_QUERY_URL": stack.url("query")}
    process = await asyncio.create_subprocess_exec(
        REGISTRY, "export", "documents", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()], json.loads(err.decode())["next_cursor"]


def ids(items: Docs) -> list[tuple[str, bool]]:
    return [(item["id"], item["deleted"]) for item in items]


async def test_a_team_keeps_an_index_in_sync_through_shares_and_unshares(stack: EmbeddedStack) -> None:
    u = uuid.uuid4().hex[:6]
    a, b = f"fda-{u}", f"fdb-{u}"
    key_a, key_b = await team_key(stack, a, SCOPES), await team_key(stack, b, SCOPES)
    await register(stack, key_a, a, "shared", description="Scores payments")
    await register(stack, key_a, a, "hidden")
    await register(stack, key_b, b, "own")
    shared, hidden, own = model_id(a, "shared"), model_id(a, "hidden"), model_id(b, "own")
    async with acting_as(stack, "registration", key_a) as http:
        assert (await http.put(f"/v1/models/{a}/shared/shares/{b}")).status_code == 200

    # B's feed lists its own model and the one shared with it, never the hidden one.
    items, cursor = await feed_until(stack, key_b, None, "B's feed", lambda items: len(items) == 2)
    assert ids(items) == [(own, False), (shared, False)]
    document = items[1]
    assert document["text"].startswith(f"# Model card: {a}/shared 1.0.0") and "Scores payments" in document["text"]
    assert document["metadata"]["team"] == a and document["metadata"]["statuses"] == ["registered"]
    assert hidden not in {i for i, _ in ids((await feed(stack, key_b, limit=1))[0])}

    # Unshared: from its last cursor, B sees exactly one tombstone, which tells nothing but the id.
    async with acting_as(stack, "registration", key_a) as http:
        assert (await http.delete(f"/v1/models/{a}/shared/shares/{b}")).status_code == 204
    items, cursor = await feed_until(stack, key_b, cursor, "the tombstone", bool)
    assert items == [{"id": shared, "text": "", "metadata": {}, "updated_at": None, "deleted": True}]

    # Resuming returns only later changes.
    assert await feed(stack, key_b, cursor) == ([], cursor)
    await register(stack, key_b, b, "own", "1.1.0")
    items, _ = await feed_until(stack, key_b, cursor, "B's new version", bool)
    assert ids(items) == [(own, False)] and items[0]["metadata"]["latest_version"] == "1.1.0"

    # A platform admin sees every model and no tombstone.
    admin_items, _ = await feed(stack, ADMIN_KEY.token, cursor)
    assert {own} <= {i for i, _ in ids(admin_items)} and not any(deleted for _, deleted in ids(admin_items))


async def test_a_former_reader_sees_its_tombstone_and_nothing_of_what_the_owner_does_after(
    stack: EmbeddedStack,
) -> None:
    u = uuid.uuid4().hex[:6]
    a, b = f"fta-{u}", f"ftb-{u}"
    key_a, key_b = await team_key(stack, a, SCOPES), await team_key(stack, b, SCOPES)
    await register(stack, key_a, a, "secret")
    secret, own = model_id(a, "secret"), model_id(b, "own")
    async with acting_as(stack, "registration", key_a) as http:
        assert (await http.put(f"/v1/models/{a}/secret/shares/{b}")).status_code == 200
    _, cursor = await feed_until(stack, key_b, None, "the shared model", lambda items: len(items) == 1)
    async with acting_as(stack, "registration", key_a) as http:
        assert (await http.delete(f"/v1/models/{a}/secret/shares/{b}")).status_code == 204
    items, after_tombstone = await feed_until(stack, key_b, cursor, "the tombstone", bool)
    assert ids(items) == [(secret, True)]

    # The owner keeps working on the model; then B changes its own model, the sentinel.
    await register(stack, key_a, a, "secret", "1.1.0")
    async with acting_as(stack, "registration", key_a) as http:
        patched = await http.patch(f"/v1/models/{a}/secret", json={"description": "Retrained"})
    assert patched.status_code == 200
    await register(stack, key_b, b, "own")
    items, _ = await feed_until(stack, key_b, after_tombstone, "B's sentinel", lambda items: own in dict(ids(items)))
    assert ids(items) == [(own, False)]
    # Replaying from before the unsharing still shows the tombstone once, where it was unshared.
    replayed, _ = await feed(stack, key_b, cursor)
    assert ids(replayed) == [(secret, True), (own, False)]
    streamed, _ = await stream(stack, key_b, cursor)
    assert ids(streamed) == [(secret, True), (own, False)]


async def test_a_deployment_moves_the_model_to_the_end_and_every_reader_agrees(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    team = f"fdd-{uuid.uuid4().hex[:6]}"
    token = await team_key(stack, team, SCOPES)
    for name in ("first", "second", "third"):
        await register(stack, token, team, name)
    names = [model_id(team, n) for n in ("first", "second", "third")]
    items, _ = await feed_until(stack, token, None, "three documents", lambda items: len(items) == 3)
    assert [i for i, _ in ids(items)] == names

    report = {"team": team, "name": "first", "version": "1.0.0", "environment": "staging", "status": "deploying"}
    async with acting_as(stack, "deploy-tracker", token) as http:
        sent = await http.post("/v1/deployments/events", json={**report, "occurred_at": datetime.now(UTC).isoformat()})
    assert sent.status_code == 202, sent.text

    def moved(items: Docs) -> bool:
        return [i for i, _ in ids(items)] == names[1:] + names[:1]

    items, end = await feed_until(stack, token, None, "the deploying model last", moved)
    assert (items[-1]["metadata"]["statuses"], items[-1]["metadata"]["environments"]) == (["deploying"], ["staging"])

    # Pages of one, the NDJSON stream and the CLI export all read the same feed.
    paged, paged_end = await feed(stack, token, limit=1)
    assert (paged, paged_end) == (items, end)
    assert await stream(stack, token) == (items, end)
    async with acting_as(stack, "query", token) as http:
        page = (await http.get("/v1/assistant/documents", params={"limit": 1})).json()
    assert page["items"] == items[:1] and page["has_more"]
    assert await stream(stack, token, page["next_cursor"]) == (items[1:], end)
    assert await cli_export(stack, token) == (items, end)
    assert await cli_export(stack, token, "--since", end) == ([], end)
    kept = tmp_path / "cursor"
    assert await cli_export(stack, token, "--cursor-file", str(kept)) == (items, end)
    assert kept.read_text() == f"{end}\n"
    assert await cli_export(stack, token, "--cursor-file", str(kept)) == ([], end)  # resumed from the file


async def test_a_cursor_that_is_not_one_is_refused_and_a_caller_needs_a_key(stack: EmbeddedStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN) as http:
        bad = await http.get("/v1/assistant/documents", params={"cursor": "bm90LWEta2V5"})
        too_many = await http.get("/v1/assistant/documents", params={"limit": 201})
    async with httpx.AsyncClient(base_url=stack.url("query")) as anonymous:
        unauthenticated = await anonymous.get("/v1/assistant/documents")
    assert (bad.status_code, too_many.status_code, unauthenticated.status_code) == (422, 422, 401)
