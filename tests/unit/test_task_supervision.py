"""A service's background tasks are restarted when they die, and shown as down until they run again."""

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from shared.chassis.health import Readiness, health_router
from shared.chassis.http_app import stop_within
from shared.chassis.supervision import TaskSupervisor
from tests.waiting import until

pytestmark = pytest.mark.unit


def restarts(task: str) -> float | None:
    return REGISTRY.get_sample_value("registry_background_task_restarts_total", {"task": task})


def up(task: str) -> float | None:
    return REGISTRY.get_sample_value("registry_background_task_up", {"task": task})


class Breaks:
    """A task that raises ``failures`` times, then runs until cancelled; counts its starts."""

    def __init__(self, failures: int) -> None:
        self.failures, self.starts = failures, 0
        self.running = asyncio.Event()

    async def run(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise ConnectionError(f"lost the database (start {self.starts})")
        self.running.set()
        await asyncio.Event().wait()


class Pauses:
    """Stands in for the pause before a restart: records it, and waits until ``released`` (set at first)."""

    def __init__(self) -> None:
        self.taken: list[float] = []
        self.released = asyncio.Event()
        self.released.set()

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)
        await self.released.wait()


def readyz_client(supervisor: TaskSupervisor) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(health_router(Readiness({}), None, supervisor.down))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


async def test_a_task_that_keeps_dying_is_restarted_after_pauses_that_double_up_to_the_cap() -> None:
    name, task = f"relay-{uuid.uuid4().hex[:6]}", Breaks(failures=5)
    pauses = Pauses()
    supervisor = TaskSupervisor(first_pause=1, max_pause=4, settle=3600, sleep=pauses)
    (running,) = supervisor.start({name: task.run})
    await asyncio.wait_for(task.running.wait(), 5)
    assert pauses.taken == [1, 2, 4, 4, 4]
    assert task.starts == 6 and restarts(name) == 5
    await stop_within([running], {}, grace=1)


async def test_a_run_that_lasted_the_settle_time_starts_the_pauses_afresh() -> None:
    name, task = f"probe-{uuid.uuid4().hex[:6]}", Breaks(failures=3)
    pauses = Pauses()
    supervisor = TaskSupervisor(first_pause=1, max_pause=60, settle=0, sleep=pauses)
    (running,) = supervisor.start({name: task.run})
    await asyncio.wait_for(task.running.wait(), 5)
    assert pauses.taken == [1, 1, 1]  # each death follows a run that had settled: no crash loop
    await stop_within([running], {}, grace=1)


async def test_readiness_names_a_dead_task_until_its_new_run_has_settled() -> None:
    name, task = f"projection-{uuid.uuid4().hex[:6]}", Breaks(failures=1)
    pauses = Pauses()
    pauses.released.clear()  # hold the restart, to look at the service meanwhile
    supervisor = TaskSupervisor(first_pause=1, settle=0.05, sleep=pauses)
    async with readyz_client(supervisor) as http:
        assert (await http.get("/readyz")).status_code == 200
        (running,) = supervisor.start({name: task.run})
        await until(lambda: asyncio.sleep(0, pauses.taken), what="the task died")

        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["detail"] == f"background task down: {name}"
        assert down.json()["errors"] == [{"task": name, "error": "ConnectionError: lost the database (start 1)"}]
        assert up(name) == 0 and restarts(name) == 0

        pauses.released.set()
        await asyncio.wait_for(task.running.wait(), 5)
        assert restarts(name) == 1

        async def ready_again() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await until(ready_again, what="/readyz 200 once the restarted task has run for the settle time")
        assert up(name) == 1 and supervisor.down() == {}
        await stop_within([running], {}, grace=1)


async def test_a_restarted_task_that_dies_again_before_settling_stays_down() -> None:
    name, task = f"worker-{uuid.uuid4().hex[:6]}", Breaks(failures=2)
    supervisor = TaskSupervisor(first_pause=0.001, settle=3600)
    (running,) = supervisor.start({name: task.run})
    await asyncio.wait_for(task.running.wait(), 5)
    assert name in supervisor.down() and up(name) == 0  # running, but not for the settle time yet
    assert "start 2" in supervisor.down()[name]  # the last death is the one shown
    await stop_within([running], {}, grace=1)


async def test_cancellation_at_shutdown_is_not_a_failure() -> None:
    name, task = f"feed-{uuid.uuid4().hex[:6]}", Breaks(failures=0)
    supervisor = TaskSupervisor(first_pause=0.001, settle=0)
    (running,) = supervisor.start({name: task.run})
    await asyncio.wait_for(task.running.wait(), 5)
    await stop_within([running], {}, grace=1)
    assert running.cancelled() and task.starts == 1
    assert restarts(name) == 0 and up(name) == 1 and supervisor.down() == {}


async def test_cancellation_during_the_pause_before_a_restart_ends_the_task() -> None:
    name, task = f"sweeper-{uuid.uuid4().hex[:6]}", Breaks(failures=1)
    pauses = Pauses()
    pauses.released.clear()
    supervisor = TaskSupervisor(first_pause=1, sleep=pauses)
    (running,) = supervisor.start({name: task.run})
    await until(lambda: asyncio.sleep(0, pauses.taken), what="the task died")
    await stop_within([running], {}, grace=1)
    assert running.cancelled() and task.starts == 1 and restarts(name) == 0


async def test_a_task_that_returns_or_cancels_itself_is_restarted_too() -> None:
    calls: list[str] = []

    async def returns() -> None:
        calls.append("returned")

    async def cancels_itself() -> None:
        calls.append("cancelled")
        raise asyncio.CancelledError  # e.g. a library's cancel scope leaking out, not a shutdown

    names = [f"returns-{uuid.uuid4().hex[:6]}", f"cancels-{uuid.uuid4().hex[:6]}"]
    supervisor = TaskSupervisor(first_pause=0.001, max_pause=0.001, settle=3600)
    running = supervisor.start(dict(zip(names, [returns, cancels_itself], strict=True)))

    async def restarted_both() -> bool:
        return all((restarts(name) or 0) >= 2 for name in names)

    await until(restarted_both, what="both tasks restarted")
    assert set(supervisor.down()) == set(names)
    assert supervisor.down()[names[0]] == "returned, though it should run until shutdown"
    assert supervisor.down()[names[1]] == "cancelled from inside the task"
    await stop_within(running, {}, grace=1)
    assert all(task.done() for task in running)


class PanicException(BaseException):
    """Stands in for pyo3's ``pyo3_runtime.PanicException``: a Rust panic surfaces as a BaseException."""


async def test_a_task_killed_by_a_rust_panic_is_shown_down_and_restarted() -> None:
    starts: list[int] = []
    running = asyncio.Event()

    async def panics_once() -> None:
        starts.append(1)
        if len(starts) == 1:
            raise PanicException("called `Result::unwrap()` on an `Err` value")
        running.set()
        await asyncio.Event().wait()

    name = f"panics-{uuid.uuid4().hex[:6]}"
    supervisor = TaskSupervisor(first_pause=0.001, max_pause=0.001, settle=3600)
    tasks = supervisor.start({name: panics_once})

    async def running_again() -> bool:
        return running.is_set()

    await until(running_again, what="the task running again after its panic")
    assert "unwrap" in supervisor.down()[name]  # down, naming why, until the new run settles
    assert restarts(name) == 1
    await stop_within(tasks, {}, grace=1)


async def test_keyboard_interrupt_and_system_exit_are_not_swallowed_as_deaths() -> None:
    for stop in (KeyboardInterrupt, SystemExit):

        async def exits(stop: type[BaseException] = stop) -> None:
            raise stop()

        with pytest.raises(stop):
            await TaskSupervisor(first_pause=0.001, settle=3600).keep(f"exits-{uuid.uuid4().hex[:6]}", exits)


async def test_readiness_names_a_failing_dependency_and_a_dead_task_together() -> None:
    name, task = f"relay-{uuid.uuid4().hex[:6]}", Breaks(failures=1)
    pauses = Pauses()
    pauses.released.clear()
    supervisor = TaskSupervisor(sleep=pauses)

    async def mongodb() -> None:
        raise ConnectionError("connection refused")

    app = FastAPI()
    app.include_router(health_router(Readiness({"mongodb": mongodb}), None, supervisor.down))
    (running,) = supervisor.start({name: task.run})
    await until(lambda: asyncio.sleep(0, pauses.taken), what="the task died")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as http:
        problem = (await http.get("/readyz")).json()
    assert problem["detail"] == f"unreachable: mongodb; background task down: {name}"
    assert [error.get("dependency") or error.get("task") for error in problem["errors"]] == ["mongodb", name]
    await stop_within([running], {}, grace=1)
