"""How a consumer's fetch wait is paced, tick by tick (stand-ins; the embedded broker's in tests/integration)."""

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError

from shared.chassis.fetch_waits import FetchWaits

pytestmark = pytest.mark.unit


@dataclass
class Fetcher:
    _fetch_max_wait_ms: int


@dataclass(eq=False)  # hashed by identity, as a consumer is
class StandInConsumer:
    """What FetchWaits reads of an AIOKafkaConsumer: its fetcher, assignment and high-water marks."""

    _fetcher: Fetcher | None
    marks: dict[str, int | None] = field(default_factory=lambda: {"p0": 0})
    unassigned_meanwhile: bool = False

    def assignment(self) -> set[str]:
        return set(self.marks)

    def highwater(self, partition: str) -> int | None:
        if self.unassigned_meanwhile:
            raise IllegalStateError("no longer assigned")
        return self.marks[partition]


def paced(consumer: StandInConsumer, idle_max_ms: int = 100) -> tuple[FetchWaits, AIOKafkaConsumer]:
    waits, real = FetchWaits(idle_max_ms), cast(AIOKafkaConsumer, consumer)
    waits.follow(lambda: real)
    return waits, real


def waits_over(waits: FetchWaits, consumer: AIOKafkaConsumer, ticks: int) -> list[Any]:
    seen = []
    for _ in range(ticks):
        waits.tick()
        seen.append(waits.wait_ms(consumer))
    return seen


def test_the_wait_doubles_while_nothing_comes_and_stops_at_the_limit() -> None:
    waits, consumer = paced(StandInConsumer(Fetcher(20)))
    # The first tick sees the marks for the first time: they moved from nothing.
    assert waits_over(waits, consumer, 5) == [20, 40, 80, 100, 100]


def test_records_bring_the_configured_wait_back_at_the_next_tick() -> None:
    stand_in = StandInConsumer(Fetcher(20))
    waits, consumer = paced(stand_in)
    waits_over(waits, consumer, 4)
    stand_in.marks["p0"] = 7
    assert waits_over(waits, consumer, 2) == [20, 40]


def test_a_consumer_not_started_or_mid_rebalance_is_skipped_without_failing() -> None:
    unstarted = StandInConsumer(None)
    waits, consumer = paced(unstarted)
    assert waits_over(waits, consumer, 2) == [None, None]
    moving = StandInConsumer(Fetcher(20), unassigned_meanwhile=True)
    waits, consumer = paced(moving)
    assert waits_over(waits, consumer, 3) == [40, 80, 100]  # no marks readable: nothing came


def test_no_limit_above_the_configured_wait_leaves_it_alone() -> None:
    waits, consumer = paced(StandInConsumer(Fetcher(500)), idle_max_ms=100)
    assert waits_over(waits, consumer, 3) == [500, 500, 500]
