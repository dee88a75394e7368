"""Quiet consumers ask the broker less often: a fetch wait grows while nothing comes, and drops back when records do.

Kafka answers a waiting fetch as soon as a record lands, so a long ``fetch.max.wait.ms`` costs a
quiet consumer nothing in latency. The embedded stand-in answers only once the wait is over, so
the local stack runs with a short wait for latency (20 ms), and then every consumer with nothing
to read asks 50 times a second. Measured on the stack at rest, that was a third of a core; with
versions created over HTTP, the command and report consumers have nothing to read, and their
fetches were about a sixth of the CPU a version cost over all processes.

With ``KAFKA_FETCH_IDLE_MAX_WAIT_MS`` set, each tick (0.1 s) looks at every consumer of the
service: one whose partitions' high-water marks moved is given its configured wait again; one
whose did not has its wait doubled, up to that setting. The first record after a quiet spell is
read at most that much later; records after it come at the configured pace. A consumer configured
with a wait at least that long (those that linger for batches) is left alone.

aiokafka has no public way to change a running consumer's fetch wait: this sets its fetcher's
``_fetch_max_wait_ms`` (aiokafka 0.14; the unit tests check it is there). A consumer without it
keeps its configured wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker

TICK_SECONDS = 0.1
WAIT_ATTRIBUTE = "_fetch_max_wait_ms"  # on AIOKafkaConsumer._fetcher, read as each fetch is built

ConsumerSource = Callable[[], AIOKafkaConsumer | None]


@dataclass
class _Pace:
    """One consumer's configured wait, the one it has now, and the high-water marks it last saw."""

    configured_ms: int
    wait_ms: int
    highwaters: dict[object, int | None] = field(default_factory=dict)


def _fetcher(consumer: AIOKafkaConsumer) -> object | None:
    """The consumer's fetcher if it is running and has the wait this module sets, else ``None``."""
    fetcher = getattr(consumer, "_fetcher", None)
    return fetcher if isinstance(getattr(fetcher, WAIT_ATTRIBUTE, None), int) else None


def _highwaters(consumer: AIOKafkaConsumer) -> dict[object, int | None]:
    marks: dict[object, int | None] = {}
    for partition in consumer.assignment():
        with contextlib.suppress(IllegalStateError):  # unassigned between the two calls (a rebalance)
            marks[partition] = consumer.highwater(partition)
    return marks


class FetchWaits:
    """Lengthens the fetch wait of this service's quiet consumers, up to ``idle_max_ms`` (0: never)."""

    def __init__(self, idle_max_ms: int) -> None:
        self.idle_max_ms = idle_max_ms
        self._sources: list[ConsumerSource] = []
        self._brokers: list[KafkaBroker] = []
        self._paces: WeakKeyDictionary[AIOKafkaConsumer, _Pace] = WeakKeyDictionary()

    def follow(self, source: ConsumerSource) -> None:
        """Pace the consumer ``source`` returns at each tick (``None`` while it is not running)."""
        self._sources.append(source)

    def follow_subscribers(self, broker: KafkaBroker) -> None:
        """Pace every subscriber of ``broker``: FastStream makes each one's consumer as it starts."""
        self._brokers.append(broker)

    def _consumers(self) -> Iterable[AIOKafkaConsumer]:
        for source in self._sources:
            if (consumer := source()) is not None:
                yield consumer
        for subscriber in (subscriber for broker in self._brokers for subscriber in broker.subscribers):
            if isinstance(consumer := getattr(subscriber, "consumer", None), AIOKafkaConsumer):
                yield consumer

    def wait_ms(self, consumer: AIOKafkaConsumer) -> int | None:
        """The fetch wait ``consumer`` has now (``None`` before its first tick, or if it is not paced)."""
        fetcher = _fetcher(consumer)
        return getattr(fetcher, WAIT_ATTRIBUTE) if fetcher is not None and consumer in self._paces else None

    def tick(self) -> None:
        """One step for every consumer: its configured wait if records came since the last, else a longer one."""
        for consumer in self._consumers():
            fetcher = _fetcher(consumer)
            if fetcher is None:
                continue
            pace = self._paces.get(consumer)
            if pace is None:
                configured = getattr(fetcher, WAIT_ATTRIBUTE)
                pace = self._paces[consumer] = _Pace(configured, configured)
            if pace.configured_ms >= self.idle_max_ms:
                continue
            marks = _highwaters(consumer)
            moved = marks != pace.highwaters
            pace.highwaters = marks
            pace.wait_ms = pace.configured_ms if moved else min(max(pace.wait_ms, 1) * 2, self.idle_max_ms)
            setattr(fetcher, WAIT_ATTRIBUTE, pace.wait_ms)

    async def run(self) -> None:
        """Tick until cancelled (a background task of the service)."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.tick()
