"""Search on the running stack depends on nothing the caller cannot read: other teams' private text changes nothing."""

import uuid
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from tests.e2e.test_assistant_search import ADMIN, key, register, search, team
from tests.waiting import until

pytestmark = pytest.mark.e2e
FOREIGN_MODELS = 12


async def test_another_teams_private_models_change_nothing_in_a_readers_search(stack: EmbeddedStack) -> None:
    reader_team, other = team(), team()
    reader = await key(stack, reader_team, ["models:read"])
    word = f"qu{uuid.uuid4().hex[:7]}"  # a word no other test's model has
    typo = word[:3] + word[4:]  # one letter dropped: not a word of any readable model
    await register(stack, reader_team, "card-fraud", description=f"Detects {word} card fraud in real time")
    await register(stack, reader_team, "chargebacks", description=f"Predicts {word} chargebacks on card disputes")
    await register(
        stack, reader_team, "churn", framework="onnx", description=f"Which {word} customers cancel their card"
    )
    queries = [word, f"{word} card", f"card fraud {word} chargebacks", typo, word[:6], f'"{word} card"', f"{word} zzz"]

    async def pages() -> list[dict[str, Any]]:
        return [await search(stack, reader, q=q) for q in queries]

    async def indexed(who: dict[str, str], count: int) -> bool:
        return bool((await search(stack, who, q=word))["total"] == count)

    await until(lambda: indexed(reader, 3), what="the reader's models in search")
    alone = await pages()
    assert alone[0]["total"] == 3 and alone[0]["items"][0]["score"] > 0

    for i in range(FOREIGN_MODELS):  # private, full of the reader's words, the misspelled one included
        text = f"{word} card fraud {typo} chargebacks {'card ' * i}{word} customers {i}"
        await register(stack, other, f"private-{i}", description=text)
    await until(lambda: indexed(ADMIN, 3 + FOREIGN_MODELS), what="the private models in search")

    crowded = await pages()
    for q, before, after in zip(queries, alone, crowded, strict=True):
        assert after == before, f"results for {q!r} moved with another team's private models"
