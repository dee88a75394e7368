"""Keeping the embedded stack's services running, as an orchestrator would.

A service that exits while the stack runs is started again after a back-off that doubles with
each recent crash, and each restart is logged with its count. The broker and the database keep
running meanwhile (the broker's data is in memory only: stopping it would lose every record
not yet consumed). The stack gives up only when a service keeps crashing — ``max_restarts``
times within ``window`` seconds — or when the broker or the database itself exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class Process(Protocol):
    """What the supervisor needs of a child process."""

    name: str

    @property
    def returncode(self) -> int | None:
        """Exit code, or ``None`` while running."""
        ...

    async def start(self) -> None:
        """Start (again)."""
        ...


class GaveUp(RuntimeError):
    """A service kept crashing, or the broker or database exited: the stack must stop."""


@dataclass
class Supervisor:
    """Restarts exited services with back-off; raises :class:`GaveUp` when that is hopeless."""

    services: Mapping[str, Process]
    infrastructure: Mapping[str, Process]
    report: Callable[[str], None]
    max_restarts: int = 5
    window: float = 60.0
    backoff: float = 1.0
    backoff_max: float = 30.0
    clock: Callable[[], float] = time.monotonic
    restarts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _crashes: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    async def run(self, stopping: asyncio.Event, *, poll: float = 0.5) -> None:
        """Watch until ``stopping`` is set; restart services that exit."""
        while not stopping.is_set():
            for name, process in self.infrastructure.items():
                if process.returncode is not None:
                    raise GaveUp(f"{name} exited with code {process.returncode}")
            for name, process in self.services.items():
                if process.returncode is not None and not stopping.is_set():
                    await self._restart(name, process, stopping)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), poll)

    async def _restart(self, name: str, process: Process, stopping: asyncio.Event) -> None:
        now = self.clock()
        crashes = self._crashes[name]
        crashes.append(now)
        while crashes and now - crashes[0] > self.window:
            crashes.popleft()
        if len(crashes) > self.max_restarts:
            raise GaveUp(
                f"{name} keeps crashing ({len(crashes)} exits in {self.window:.0f}s); last code {process.returncode}"
            )
        delay = min(self.backoff_max, self.backoff * 2 ** (len(crashes) - 1))
        self.report(f"{name} exited with code {process.returncode}; restarting in {delay:g}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        if stopping.is_set():
            return
        await process.start()
        self.restarts[name] += 1
        self.report(f"{name} restarted (restart {self.restarts[name]} since the stack started)")
