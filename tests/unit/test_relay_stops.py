"""The outbox relay stops when cancelled, even when a commit wakes it in the same turn.

Python 3.11's ``wait_for`` returns the awaited result when it completes in the turn the
cancellation arrives, swallowing the cancellation; a relay relying on it would outlive its service,
looping for ever and logging its closed client's errors.
"""

import asyncio

import pytest

from shared.chassis.supervision import stop_if_cancelled
from shared.outbox.memory import InMemoryOutboxLog
from shared.outbox.relay import OutboxRelay

pytestmark = pytest.mark.unit


async def test_a_relay_woken_as_it_is_cancelled_stops() -> None:
    async def publish(rows: list[dict[str, object]]) -> list[tuple[dict[str, object], str]]:
        return []

    for _ in range(20):  # each round races the wake-up against the cancellation once
        relay = OutboxRelay(repo=InMemoryOutboxLog(), publish=publish, batch_size=10, interval=30)
        task = asyncio.create_task(relay.run())
        for _ in range(5):
            await asyncio.sleep(0)  # the relay drained and waits for a wake-up
        relay.notify()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=1)
        assert task in done, "the relay swallowed its cancellation and kept running"
        assert task.cancelled()


async def test_a_loop_whose_cancellation_a_library_swallowed_stops_at_its_next_turn() -> None:
    swallowed = asyncio.Event()

    async def swallowing_wait() -> None:  # what 3.11's wait_for does when its result arrives with the cancel
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed.set()

    async def background_loop() -> None:
        while True:
            await swallowing_wait()
            stop_if_cancelled()

    task = asyncio.create_task(background_loop())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=1)
    assert swallowed.is_set() and task in done and task.cancelled()
