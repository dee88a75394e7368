"""A console action returns to its page only once this replica's read model has the write (bounded)."""

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request

from query.console.actions import read_model_has
from query.projection.model import ReadModel
from registry_contract.ids import model_id

pytestmark = pytest.mark.unit
CARD = model_id("fraud", "card")


def request_to(model: ReadModel | None, wait: float = 5.0) -> Request:
    state = SimpleNamespace(consistency_wait_seconds=wait, **({"read_model": model} if model is not None else {}))
    return cast(Request, SimpleNamespace(app=SimpleNamespace(state=state)))


def apply(model: ReadModel, revision: int) -> None:
    model.revisions[("r", CARD)] = revision
    model.notify({CARD})


async def test_the_action_waits_until_the_read_model_has_its_write() -> None:
    model = ReadModel()
    waiting: asyncio.Task[Any] = asyncio.create_task(read_model_has(request_to(model), f"r.{CARD}.10"))
    await asyncio.sleep(0)
    apply(model, 9)
    await asyncio.sleep(0)
    assert not waiting.done()  # an older revision is not the write
    apply(model, 10)
    assert await asyncio.wait_for(waiting, 5) is True


async def test_a_read_model_that_does_not_catch_up_in_time_says_so() -> None:
    assert await read_model_has(request_to(ReadModel(), wait=0.01), f"r.{CARD}.10") is False


@pytest.mark.parametrize("token", [None, "", "garbage"])
async def test_without_a_usable_token_nothing_is_waited_for(token: str | None) -> None:
    assert await read_model_has(request_to(ReadModel(), wait=60), token) is True


async def test_without_a_read_model_nothing_is_waited_for() -> None:
    assert await read_model_has(request_to(None), f"r.{CARD}.10") is True
