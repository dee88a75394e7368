"""Waiting on conditions, never on the clock: one helper that fails loudly when time runs out."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from registry_cli.config import free_port

T = TypeVar("T")


class LoopTurns:
    """Another task's turns on the event loop, noted at each step of some work (``async with``).

    The work left the loop free between two steps when the other task got a turn between them.
    """

    def __init__(self) -> None:
        self.turns = 0
        self.steps: list[tuple[int, int]] = []  # (records in a step, the other task's turns by then)
        self._task: asyncio.Task[None] | None = None

    def step(self, records: int) -> None:
        self.steps.append((records, self.turns))

    def records(self) -> int:
        return sum(count for count, _ in self.steps)

    def free_between_steps(self) -> bool:
        return all(later > earlier for (_, earlier), (_, later) in itertools.pairwise(self.steps))

    async def _take_turns(self) -> None:
        while True:
            self.turns += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> LoopTurns:
        self._task = asyncio.create_task(self._take_turns())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def until(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 20, what: str = "condition", interval: float = 0.05
) -> T:
    """Await ``check`` every ``interval`` s until it returns something truthy, and return that.

    Fails with an ``AssertionError`` naming ``what`` once ``timeout`` s have passed.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g}s")
        await asyncio.sleep(interval)


@asynccontextmanager
async def serving(routes: list[Route]) -> AsyncIterator[int]:
    """A real HTTP server on a free loopback port for the duration; yields the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not task.done(), "the HTTP server stopped before it started"
        return bool(server.started)

    await until(started, timeout=10, what="the HTTP server started", interval=0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 5)
        except TimeoutError:  # a request still held open (a receiver that hangs on purpose)
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["serving", "until"]
