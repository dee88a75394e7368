"""A service asked to stop stops, even when a dependency never answers."""

import asyncio

import pytest

from shared.chassis.http_app import stop_within

pytestmark = pytest.mark.unit


async def test_a_hung_closer_and_a_task_that_ignores_cancellation_do_not_hold_shutdown() -> None:
    # Shutdown is bounded: a hung closer would otherwise hold a test until pytest's 300 s timeout.
    released = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await released.wait()  # swallows its cancellation, as a buggy worker might

    closed: list[str] = []

    async def hangs() -> None:
        await asyncio.Event().wait()

    async def closes() -> None:
        closed.append("mongodb")

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_within([task], {"kafka": hangs, "mongodb": closes}, grace=0.1), timeout=5)
    assert closed == ["mongodb"]  # the step after the hung one still ran
    assert not task.done()  # abandoned, not awaited forever
    released.set()
    await task
