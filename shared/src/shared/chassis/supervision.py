"""Background tasks kept running: one that dies is restarted with back-off, logged, counted and shown as down.

Every long-running task of a service (relays, projections, workers, samplers) runs under one
:class:`TaskSupervisor`. A task that raises, or returns although it should run until shutdown, is
restarted after a pause that doubles from ``first_pause`` up to ``max_pause`` (and starts again
from ``first_pause`` once a run has lasted ``settle`` seconds). From its death until its new run
has lasted ``settle`` seconds it is *down*: ``/readyz`` answers 503 naming it and
``registry_background_task_up`` is 0. Cancellation at shutdown is not a failure: it ends the
task for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from shared.chassis.logs import describe
from shared.chassis.metrics import BACKGROUND_TASK_RESTARTS, BACKGROUND_TASK_UP

Background = Callable[[], Coroutine[Any, Any, None]]
Sleep = Callable[[float], Awaitable[None]]
log = structlog.get_logger("registry.tasks")


def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` in a task asked to stop whose request a library swallowed.

    Python 3.11's ``asyncio.wait_for`` (which aiokafka and others use inside) returns a result
    that arrives in the same turn as a cancellation and drops the cancellation; a loop that runs
    until shutdown would then run for ever. The request stays counted in ``Task.cancelling()``, so
    each loop of a background task calls this once a turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class _Health:
    """Why a task last died while it is down (``None`` while up), and the timer that brings it up."""

    error: str | None = None
    recovering: asyncio.TimerHandle | None = None


class TaskSupervisor:
    """Runs named background tasks until cancelled, restarting each one that dies."""

    def __init__(
        self, *, first_pause: float = 1.0, max_pause: float = 30.0, settle: float = 5.0, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.first_pause, self.max_pause, self.settle = first_pause, max_pause, settle
        self._sleep = sleep  # the pause before a restart (a test records it instead of waiting)
        self._health: dict[str, _Health] = {}

    def start(self, tasks: Mapping[str, Background]) -> list[asyncio.Task[None]]:
        """Start each task under supervision; cancelling a returned task stops it for good."""
        return [asyncio.create_task(self.keep(name, run), name=name) for name, run in tasks.items()]

    def down(self) -> dict[str, str]:
        """The tasks that are down now, each with why it last died (for ``/readyz``)."""
        return {name: health.error for name, health in self._health.items() if health.error is not None}

    async def keep(self, name: str, run: Background) -> None:
        """Run ``run`` until cancelled, restarting it after a pause each time it dies."""
        health = self._health.setdefault(name, _Health())
        BACKGROUND_TASK_RESTARTS.labels(name)  # exported from 0, so increase() sees the first restart
        BACKGROUND_TASK_UP.labels(name).set(1)
        loop = asyncio.get_running_loop()
        pause = self.first_pause
        try:
            while True:
                started = loop.time()
                error, exc = await self._run_once(run)
                if loop.time() - started >= self.settle:
                    pause = self.first_pause  # it had recovered: this is a new failure, not a crash loop
                self._went_down(name, health, error)
                log.error("background task died", task=name, error=error, restart_in_seconds=pause, exc_info=exc)
                await self._sleep(pause)
                pause = min(pause * 2, self.max_pause)
                BACKGROUND_TASK_RESTARTS.labels(name).inc()
                log.info("background task restarted", task=name)
                health.recovering = loop.call_later(self.settle, self._recovered, name, health)
        finally:
            if health.recovering is not None:
                health.recovering.cancel()

    async def _run_once(self, run: Background) -> tuple[str, BaseException | None]:
        """Run ``run`` once; return why it ended (a cancellation from outside, or the process exiting, is re-raised).

        Any other ``BaseException`` is a death: Tantivy's ``pyo3_runtime.PanicException`` derives from
        ``BaseException`` and ``asyncio.to_thread`` passes it through, and the task must come back from it.
        """
        try:
            await run()
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # shutdown: not a failure
            # Cancelled from inside (a leaked cancel scope, a library's own cancel): it died all the same.
            return "cancelled from inside the task", exc
        except (KeyboardInterrupt, SystemExit):
            raise  # the process is stopping: not the task's death
        except BaseException as exc:  # a Rust panic (pyo3's PanicException) is one
            return describe(exc, limit=300), exc
        return "returned, though it should run until shutdown", None

    def _went_down(self, name: str, health: _Health, error: str) -> None:
        if health.recovering is not None:
            health.recovering.cancel()
            health.recovering = None
        health.error = error
        BACKGROUND_TASK_UP.labels(name).set(0)

    def _recovered(self, name: str, health: _Health) -> None:
        health.error, health.recovering = None, None
        BACKGROUND_TASK_UP.labels(name).set(1)
        log.info("background task is up again", task=name, settle_seconds=self.settle)
