"""Quiet consumers ask the broker less often: a fetch wait grows while nothing comes, and drops back when records do.

Kafka answers a waiting fetch as soon as a record lands, so a long ``fetch.max.wait.ms`` costs a
quiet consumer nothing in latency. The embedded stand-in answers only once the wait is over, so
the local stack runs with a short wait for latency (20 ms), and then every consumer with nothing
to read asks 50 times a second. Measured on the stack at rest, that was a third of a core; with
versions created over HTTP, the command and report consumers have nothing to read, and their
fetches were about a sixth of the CPU a version cost over all processes.

With ``KAFKA_FETCH_IDLE_MAX_WAIT_MS`` set, each tick (0.1 s) looks at every consumer it follows
(the service's subscribers; not the query's read model, which stays as fresh as configured). One
that read records since the last tick, or that is behind its partitions' high-water marks (a
backlog, a restart catching up), gets its configured wait again. One that is neither has
its wait doubled, up to that setting. So the first record after a quiet spell is read at most that
much later (the fetch in flight keeps the wait it was sent with), and until the next tick the
fetches after it may still wait as long; from then on the consumer is back at its configured pace.
A consumer configured with a wait at least that long (one that lingers for batches) is left alone,
and so is one behind a transaction still open (``read_committed``; the services use none).

aiokafka has no public way to change a running consumer's fetch wait, nor a synchronous one to
read its positions: this sets its fetcher's ``_fetch_max_wait_ms`` and reads its partitions'
states (aiokafka 0.14; tests/unit/test_fetch_waits.py checks aiokafka still has them). A consumer
whose pacing fails, for want of them or otherwise, gets its configured wait back and is not paced
again, and a warning names the problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary, WeakSet

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker

log = structlog.get_logger(__name__)
TICK_SECONDS = 0.1
WAIT_ATTRIBUTE = "_fetch_max_wait_ms"  # on AIOKafkaConsumer._fetcher, read as each fetch request is built

ConsumerSource = Callable[[], AIOKafkaConsumer | None]
Marks = dict[TopicPartition, tuple[int | None, int | None]]  # partition -> (position, high-water mark)


@dataclass
class _Pace:
    """One consumer's configured wait and its partitions' marks at the last tick (its fetcher holds the wait now)."""

    configured_ms: int
    marks: Marks = field(default_factory=dict)


def _fetcher(consumer: AIOKafkaConsumer) -> Any | None:
    """The consumer's fetcher if it is running and has the wait this module sets, else ``None``."""
    fetcher = getattr(consumer, "_fetcher", None)
    return fetcher if isinstance(getattr(fetcher, WAIT_ATTRIBUTE, None), int) else None


def _marks(consumer: AIOKafkaConsumer) -> Marks:
    """Each assigned partition's position (next offset to read) and last fetched high-water mark.

    Read from aiokafka 0.14's partition states (the public ``position`` is a coroutine that can wait
    for a reset); if aiokafka keeps them elsewhere, this raises and the consumer is given up.
    """
    subscription = consumer._subscription.subscription  # None until subscribed or assigned
    if subscription is None or subscription.assignment is None:
        return {}
    marks: Marks = {}
    for partition in consumer.assignment():
        state = subscription.assignment.state_value(partition)
        marks[partition] = (state.position if state.has_valid_position else None, state.highwater)
    return marks


def _busy(marks: Marks, before: Marks) -> bool:
    """Records read or landed since the last tick (or the assignment changed), or some still to read."""
    behind = any(p is not None and h is not None and p < h for p, h in marks.values())
    return behind or marks != before


class FetchWaits:
    """Lengthens the fetch wait of this service's quiet consumers, up to ``idle_max_ms`` (0: never)."""

    def __init__(self, idle_max_ms: int) -> None:
        self.idle_max_ms = idle_max_ms
        self._sources: list[ConsumerSource] = []
        self._brokers: list[KafkaBroker] = []
        self._paces: WeakKeyDictionary[AIOKafkaConsumer, _Pace] = WeakKeyDictionary()
        self._given_up: WeakSet[AIOKafkaConsumer] = WeakSet()
        self._warned: set[str] = set()

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
        """One step for every consumer: its configured wait if it is busy, else a longer one."""
        for consumer in self._consumers():
            if consumer in self._given_up:
                continue
            try:
                self._step(consumer)
            except Exception as exc:  # aiokafka's internals moved: never a reason to stop the others
                self._give_up(consumer, f"{type(exc).__name__}: {exc}"[:200])

    def _step(self, consumer: AIOKafkaConsumer) -> None:
        """Pace ``consumer`` one tick; anything of aiokafka's not where 0.14 keeps it raises (see :meth:`tick`)."""
        fetcher = consumer._fetcher
        if fetcher is None:
            return  # not started yet
        pace = self._paces.get(consumer)
        if pace is None:
            pace = self._paces[consumer] = _Pace(int(getattr(fetcher, WAIT_ATTRIBUTE)))
        if pace.configured_ms >= self.idle_max_ms:
            return
        marks = _marks(consumer)
        busy, pace.marks = _busy(marks, pace.marks), marks
        waiting = int(getattr(fetcher, WAIT_ATTRIBUTE))
        setattr(fetcher, WAIT_ATTRIBUTE, pace.configured_ms if busy else min(max(waiting, 1) * 2, self.idle_max_ms))

    def _give_up(self, consumer: AIOKafkaConsumer, problem: str) -> None:
        """Give ``consumer`` its configured wait back and pace it no more; warn once per problem."""
        self._given_up.add(consumer)
        pace, fetcher = self._paces.get(consumer), _fetcher(consumer)
        if pace is not None and fetcher is not None:
            setattr(fetcher, WAIT_ATTRIBUTE, pace.configured_ms)
        if problem not in self._warned:
            self._warned.add(problem)
            log.warning("a consumer keeps its configured fetch wait", problem=problem)

    async def run(self) -> None:
        """Tick until cancelled (a background task of the service)."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.tick()
