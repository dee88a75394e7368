"""Waiting on conditions, never on the clock: one helper that fails loudly when time runs out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from registry_cli.config import free_port

T = TypeVar("T")


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
