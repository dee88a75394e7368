"""``/healthz``, ``/readyz`` and ``/metrics``, the same on every service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from shared.chassis.logs import describe
from shared.chassis.problems import Problem, problem_response
from shared.chassis.supervision import stop_if_cancelled

Check = Callable[[], Awaitable[object]]
ConsumerStatus = Callable[[], dict[str, dict[str, Any]]]
TasksDown = Callable[[], dict[str, str]]

DEPENDENCY_UP = Gauge(
    "registry_dependency_up", "1 when the dependency answered the last readiness check", ["dependency"]
)


class Readiness:
    """The dependency checks behind ``/readyz``, also run on a timer so the gauge stays current.

    Nothing else calls ``/readyz`` on a schedule under Compose, so without the timer
    ``registry_dependency_up`` would only move when a probe happened to ask.
    """

    def __init__(self, checks: dict[str, Check], *, timeout: float = 2.0) -> None:
        self.checks, self.timeout = checks, timeout

    async def failures(self) -> dict[str, str]:
        """Run every check (each within ``timeout``); return the failing ones with why."""
        failed: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                async with asyncio.timeout(self.timeout):  # not wait_for: see shared.outbox.relay
                    await check()
                DEPENDENCY_UP.labels(name).set(1)
            except Exception as exc:  # any failure means not ready; say which and why
                DEPENDENCY_UP.labels(name).set(0)
                failed[name] = describe(exc, limit=300)
        return failed

    async def watch(self, interval: float) -> None:
        """Re-check every ``interval`` seconds, forever."""
        while True:
            await self.failures()
            stop_if_cancelled()  # a check's client may have swallowed a shutdown's cancellation
            await asyncio.sleep(interval)


def health_router(
    readiness: Readiness, consumers: ConsumerStatus | None = None, tasks_down: TasksDown | None = None
) -> APIRouter:
    """Routes for liveness (no I/O), readiness and metrics.

    ``/readyz`` fails while a dependency check fails or a background task is down (``tasks_down``
    names each with why: :class:`shared.chassis.supervision.TaskSupervisor`).

    ``/readyz`` also reports each consumer group's lag and whether it is stalled (lag that has
    not moved for ``CONSUMER_STALL_SECONDS``); a stalled consumer does not make the HTTP API
    unready (it still serves), it is shown here, in ``registry_consumer_stalled`` and by an alert.
    """
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", response_model=None)
    async def readyz() -> JSONResponse:
        failed = await readiness.failures()
        down = tasks_down() if tasks_down else {}
        groups = consumers() if consumers else {}
        if failed or down:
            why = []
            if failed:
                why.append("unreachable: " + ", ".join(sorted(failed)))
            if down:
                why.append("background task down: " + ", ".join(sorted(down)))
            return problem_response(
                Problem(
                    "not_ready",
                    "; ".join(why),
                    errors=[
                        *({"dependency": k, "error": v} for k, v in failed.items()),
                        *({"task": k, "error": v} for k, v in down.items()),
                    ],
                )
            )
        body: dict[str, Any] = {"status": "ready", "dependencies": sorted(readiness.checks)}
        if groups:
            body["consumers"] = groups
        return JSONResponse(body)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
