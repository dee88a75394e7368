"""A stack of one test's own: for tests that kill, stop or rebuild what the session's stack must keep.

The services of a private stack get a few settings of their own (``PRIVATE_ENV``): a key cache that
outlives a database outage, a rate limit no test reaches, and a short wait for consistency tokens.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import httpx

from registry_cli.config import StackSettings
from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY
from tests.throwaway import throwaway_settings
from tests.waiting import until

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
PRIVATE_ENV = {
    "KEY_CACHE_SECONDS": "600",  # a key used before the databases stop still authenticates
    "RATE_LIMIT_PER_SECOND": "10000",
    "RATE_LIMIT_BURST": "10000",
    "QUERY_CONSISTENCY_WAIT_SECONDS": "0.5",
    "LAG_SAMPLE_SECONDS": "1",
}


def private_settings(data_dir: Path) -> StackSettings:
    """Free ports and ``data_dir``, with :data:`ADMIN_KEY` as the bootstrap ``platform:admin`` key."""
    return throwaway_settings(data_dir, bootstrap_admin_key=ADMIN_KEY.token)


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` in this process's environment while services start (they inherit it), then as before."""
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.asynccontextmanager
async def private_stack(settings: StackSettings, env: Mapping[str, str] = PRIVATE_ENV) -> AsyncIterator[EmbeddedStack]:
    """The broker, database servers and four services of ``settings``, stopped afterwards.

    Started again with the same ``settings``, a stack finds its databases as they were and a new,
    empty broker (the embedded broker keeps nothing on disk).
    """
    stack = EmbeddedStack(settings, quiet=True)
    try:
        await stack.start_infrastructure()
        with _environment(env):
            await stack.start_services()
        yield stack
    finally:
        await stack.stop()


async def kill(stack: EmbeddedStack, service: str) -> None:
    """SIGKILL ``service`` (even a stopped one) and reap it."""
    process = stack.services[service].process
    assert process is not None and process.returncode is None, f"{service} is not running"
    process.send_signal(signal.SIGKILL)
    await process.wait()


def pause(stack: EmbeddedStack, service: str) -> None:
    """SIGSTOP ``service``: it holds its connections and does nothing until killed or continued."""
    process = stack.services[service].process
    assert process is not None and process.returncode is None, f"{service} is not running"
    process.send_signal(signal.SIGSTOP)


async def start_again(stack: EmbeddedStack, service: str, env: Mapping[str, str] = PRIVATE_ENV) -> None:
    """Start ``service`` again (after :func:`kill`) and wait until it answers ``/readyz``."""
    with _environment(env):
        await stack.services[service].start()
    await stack.wait_ready(service, 60)


async def first_ok(http: httpx.AsyncClient, path: str, *, timeout: float = 30) -> httpx.Response:
    """The first 200 answer of ``GET path``; fails loudly after ``timeout`` s."""

    async def answered() -> httpx.Response | None:
        try:
            response = await http.get(path)
        except httpx.TransportError:  # the service is (re)starting
            return None
        return response if response.status_code == 200 else None

    return await until(answered, timeout=timeout, what=f"GET {path} answering 200", interval=0.1)


__all__ = ["ADMIN", "PRIVATE_ENV", "first_ok", "kill", "pause", "private_settings", "private_stack", "start_again"]
