"""The supervision policy of `registry up`, with child processes stood in by fakes."""

import asyncio

import pytest

from registry_cli.supervise import GaveUp, Supervisor

pytestmark = pytest.mark.unit


class FakeProcess:
    def __init__(self, name: str, *, crashes_after_start: bool = False) -> None:
        self.name, self.crashes_after_start = name, crashes_after_start
        self.returncode: int | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        self.returncode = -9 if self.crashes_after_start else None


async def test_a_crashed_service_is_restarted_and_the_restart_reported() -> None:
    service, broker = FakeProcess("registration"), FakeProcess("kafka")
    lines: list[str] = []
    supervisor = Supervisor({"registration": service}, {"kafka": broker}, lines.append, backoff=0.01)
    stopping = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stopping, poll=0.01))
    service.returncode = -9  # killed
    while service.starts == 0:
        await asyncio.sleep(0.01)
    stopping.set()
    await task
    assert service.returncode is None and supervisor.restarts["registration"] == 1
    assert any("registration exited with code -9" in line for line in lines)
    assert broker.starts == 0  # the broker and database are left running


async def test_a_service_that_keeps_crashing_stops_the_stack() -> None:
    service = FakeProcess("audit", crashes_after_start=True)
    service.returncode = 1
    supervisor = Supervisor({"audit": service}, {}, lambda _: None, max_restarts=3, backoff=0.001)
    with pytest.raises(GaveUp, match="keeps crashing"):
        await supervisor.run(asyncio.Event(), poll=0.001)
    assert service.starts == 3


async def test_the_broker_exiting_stops_the_stack_without_restarting_anything() -> None:
    broker = FakeProcess("kafka")
    broker.returncode = 1
    service = FakeProcess("query")
    with pytest.raises(GaveUp, match="kafka exited"):
        await Supervisor({"query": service}, {"kafka": broker}, lambda _: None).run(asyncio.Event(), poll=0.001)
    assert service.starts == 0
