"""Survivors are frozen out of full collections; a cycle dropped after its freeze waits for the full one."""

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path

import pytest

from shared.chassis import heap
from shared.chassis.heap import freeze_survivors, return_free_memory
from tests.waiting import until

pytestmark = pytest.mark.unit


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


@pytest.fixture
async def unfrozen() -> AsyncIterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


async def rounds(full_every_seconds: float) -> weakref.ref[Node]:
    """A cycle frozen by a round of :func:`freeze_survivors`, then dropped; a few rounds later, a weak ref to it."""
    node = Node()
    gone = weakref.ref(node)
    task = asyncio.create_task(freeze_survivors(0.01, full_every_seconds=full_every_seconds))
    try:

        async def frozen() -> bool:
            return gc.get_freeze_count() > 0

        await until(frozen, what="a round of freezing")
        del node
        await asyncio.sleep(0.1)  # several more rounds
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return gone


async def test_a_frozen_cycle_is_skipped_by_collections(unfrozen: None) -> None:
    gone = await rounds(full_every_seconds=3600)
    gc.collect()
    assert gone() is not None  # frozen: the collections of the rounds, and this one, walk past it


async def test_the_full_collection_frees_a_cycle_dropped_after_it_was_frozen(unfrozen: None) -> None:
    gone = await rounds(full_every_seconds=0.05)
    assert gone() is None


async def test_a_round_does_not_count_the_frozen_objects(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting walks every frozen object (tens of ms in a large read model), on the event loop."""
    counted: list[int] = []
    froze: list[int] = []
    freeze = gc.freeze

    def count() -> int:
        counted.append(1)
        return 0

    def freeze_and_note() -> None:
        froze.append(1)
        freeze()

    monkeypatch.setattr(gc, "get_freeze_count", count)
    monkeypatch.setattr(gc, "freeze", freeze_and_note)
    task = asyncio.create_task(freeze_survivors(0.01, full_every_seconds=0.02))
    try:

        async def rounds_done() -> bool:
            return len(froze) >= 3

        await until(rounds_done, what="three rounds of freezing")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert counted == []


def resident_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


ROUNDS = {
    "the query's heap round": lambda: freeze_survivors(0.01, full_every_seconds=3600),
    "every service's": lambda: return_free_memory(0.01),
}


@pytest.mark.parametrize("round_of", ROUNDS.values(), ids=ROUNDS.keys())
async def test_a_round_gives_memory_freed_inside_the_process_back_to_the_system(
    unfrozen: None, round_of: Callable[[], Coroutine[None, None, None]]
) -> None:
    assert heap.RETURN_FREE_MEMORY is not None  # glibc, as on every machine this registry is built for
    chunks = [bytes(10_000) for _ in range(20_000)]  # 200 MB from the C heap (below glibc's mmap threshold)
    on_top = bytes(10_000)  # allocated after them: the heap cannot just shrink from its end
    before = resident_mb()
    del chunks
    kept = resident_mb()
    assert before - kept < 50  # freed inside the process, still resident
    task = asyncio.create_task(round_of())
    try:

        async def returned() -> bool:
            return resident_mb() < kept - 150

        await until(returned, what="the freed pages given back")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(on_top) == 10_000
