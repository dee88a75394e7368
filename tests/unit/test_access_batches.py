"""Access events recorded close together leave in one batch; a stop publishes what was taken."""

import asyncio
from typing import Any

import pytest

from registry_contract.envelope import CloudEvent
from shared.chassis import access
from shared.chassis.access import AccessLog
from shared.chassis.signing import EventSigner

pytestmark = pytest.mark.unit


class BatchesKept(AccessLog):
    """An access log whose batches are kept here instead of going to Kafka."""

    def __init__(self) -> None:
        broker: Any = None  # only _publish uses it
        super().__init__(broker, topic="access", service="query", signer=EventSigner(b"k" * 32))
        self.batches: list[list[CloudEvent]] = []

    async def _publish(self, batch: list[CloudEvent]) -> None:
        if batch:  # as the real one: nothing to send, nothing sent
            self.batches.append(list(batch))


def read(log: AccessLog, path: str) -> None:
    log.record("access_granted", principal=None, method="GET", path=path, status=200)


def paths(log: BatchesKept) -> list[list[str]]:
    return [[event.data["path"] for event in batch] for batch in log.batches]


async def test_events_recorded_within_the_linger_leave_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "ACCESS_LINGER_SECONDS", 0.2)
    log = BatchesKept()
    task = asyncio.create_task(log.run())
    read(log, "/v1/models/a")
    await asyncio.sleep(0.05)  # the first is taken and lingers
    read(log, "/v1/models/b")
    read(log, "/v1/models/c")
    await asyncio.sleep(0.4)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert paths(log) == [["/v1/models/a", "/v1/models/b", "/v1/models/c"]]


async def test_a_stop_during_the_linger_publishes_the_event_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "ACCESS_LINGER_SECONDS", 10)
    log = BatchesKept()
    task = asyncio.create_task(log.run())
    read(log, "/v1/models/a")
    await asyncio.sleep(0.05)  # taken from the queue, lingering
    read(log, "/v1/models/b")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert paths(log) == [["/v1/models/a", "/v1/models/b"]]
