"""The query service's note of models changed since the feed last rendered them."""

import asyncio

import pytest

from query.app import (
    REFRESH_INTERVAL_SECONDS,
    REFRESH_MAX_PAUSE_SECONDS,
    REFRESH_SHARE,
    ChangedModels,
    pause_after_refresh,
)

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


def test_the_feed_refresh_waits_a_second_at_least_and_renders_at_most_its_share_of_the_time() -> None:
    assert pause_after_refresh(0.01) == REFRESH_INTERVAL_SECONDS  # a few cards: once a second, as before
    # A round of 0.5 s (a stream of changes over many models) is followed by 2 s without rendering:
    # the refresh takes a fifth of the time, not half.
    assert pause_after_refresh(0.5) == pytest.approx(0.5 * (1 - REFRESH_SHARE) / REFRESH_SHARE) == pytest.approx(2.0)
    assert pause_after_refresh(60) == REFRESH_MAX_PAUSE_SECONDS  # a round stalled by the database: not 4 minutes
