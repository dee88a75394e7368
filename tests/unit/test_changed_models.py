"""The query service's note of models changed since the feed last rendered them."""

import asyncio

import pytest

from query.app import ChangedModels

pytestmark = pytest.mark.unit


async def test_changes_collapse_into_one_set_taken_whole() -> None:
    changed = ChangedModels()
    changed.add({"m1", "m2"})
    changed.add({"m2", "m3"})
    assert await changed.take() == ["m1", "m2", "m3"]
    waiting = asyncio.ensure_future(changed.take())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # nothing new: it waits
    changed.add({"m4"})
    assert await asyncio.wait_for(waiting, 1) == ["m4"]
