"""Plain-aiokafka helpers: publish raw records and collect what services emit."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY

from tests.waiting import until


class Collector:
    """Consumes topics from the beginning in the background and keeps every record."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self.records: list[Any] = []
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=f"test-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
            fetch_max_wait_ms=20,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task
        self._task.cancel()
        # Leaving the group is a courtesy: never let a slow LeaveGroup hold a test.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._consumer.stop(), 10)

    async def _run(self) -> None:
        async for record in self._consumer:
            self.records.append(record)

    def matching(self, predicate: Callable[[Any], bool]) -> list[Any]:
        return [r for r in self.records if predicate(r)]

    async def wait_for(self, predicate: Callable[[Any], bool], *, count: int = 1, timeout: float = 20) -> list[Any]:
        """Every record matching ``predicate`` once there are ``count``; fail loudly after ``timeout`` s."""

        async def enough() -> list[Any] | None:
            found = self.matching(predicate)
            return found if len(found) >= count else None

        try:
            return await until(enough, timeout=timeout, what=f"{count} matching records", interval=0.02)
        except AssertionError:
            seen = len(self.matching(predicate))
            raise AssertionError(f"expected {count} matching records within {timeout}s, saw {seen}") from None


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


def caused_by(command_id: str) -> Callable[[Any], bool]:
    return lambda record: header(record, "ce_causationid") == command_id


async def publish_raw(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, list[tuple[str, bytes]], bytes]]
) -> None:
    """Send ``(value, headers, key)`` records with plain aiokafka, as a producer would."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value, headers, key in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def trickle_undecodable(bootstrap: str, topic: str, *, records: int, spacing_s: float) -> None:
    """Send ``records`` values that are not even JSON, ``spacing_s`` apart: a trickle for a lingering consumer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for number in range(records):
            await producer.send_and_wait(topic, b"\xff", key=f"k{number}".encode())
            await asyncio.sleep(spacing_s)
    finally:
        await producer.stop()


def consumer_batches(group: str) -> float:
    """Batches this process's consumers in ``group`` have handled so far (``registry_consumer_batch_seconds``)."""
    return REGISTRY.get_sample_value("registry_consumer_batch_seconds_count", {"group": group}) or 0.0
