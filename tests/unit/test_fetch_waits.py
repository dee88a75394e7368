"""How a consumer's fetch wait is paced, tick by tick (stand-ins; the embedded broker's in tests/integration)."""

import inspect
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher as AiokafkaFetcher
from aiokafka.consumer.subscription_state import Assignment as AiokafkaAssignment
from aiokafka.consumer.subscription_state import Subscription as AiokafkaSubscription
from aiokafka.consumer.subscription_state import TopicPartitionState

from shared.chassis.fetch_waits import WAIT_ATTRIBUTE, FetchWaits

pytestmark = pytest.mark.unit


@dataclass
class Fetcher:
    _fetch_max_wait_ms: int


@dataclass
class PartitionState:
    position: int = 0
    highwater: int | None = 0
    has_valid_position: bool = True


@dataclass
class Assignment:
    states: dict[str, PartitionState]

    def state_value(self, partition: str) -> PartitionState:
        return self.states[partition]


@dataclass
class Subscription:
    assignment: Assignment


@dataclass
class Subscriptions:
    subscription: Subscription


@dataclass(eq=False)  # hashed by identity, as a consumer is
class StandInConsumer:
    """What FetchWaits reads of an AIOKafkaConsumer: its fetcher, its assignment and its partitions' states."""

    _fetcher: Fetcher | None
    _subscription: Subscriptions

    def assignment(self) -> set[str]:
        return set(self._subscription.subscription.assignment.states)


def stand_in(wait_ms: int | None = 20, **states: PartitionState) -> StandInConsumer:
    fetcher = Fetcher(wait_ms) if wait_ms is not None else None  # None: not started
    return StandInConsumer(fetcher, Subscriptions(Subscription(Assignment(states or {"p0": PartitionState()}))))


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
    waits, consumer = paced(stand_in())
    # The first tick sees the marks for the first time: they moved from nothing.
    assert waits_over(waits, consumer, 5) == [20, 40, 80, 100, 100]


def test_records_landed_or_read_bring_the_configured_wait_back_at_the_next_tick() -> None:
    partition = PartitionState(position=5, highwater=5)
    waits, consumer = paced(stand_in(p0=partition))
    waits_over(waits, consumer, 4)
    partition.highwater = 7  # landed: the consumer is behind until it has read them
    assert waits_over(waits, consumer, 2) == [20, 20]
    partition.position = 7  # read
    assert waits_over(waits, consumer, 3) == [20, 40, 80]


def test_a_consumer_working_through_a_backlog_keeps_its_configured_wait() -> None:
    backlog = PartitionState(position=0, highwater=50_000)  # nothing new lands, but much is left to read
    waits, consumer = paced(stand_in(p0=backlog))
    assert waits_over(waits, consumer, 4) == [20, 20, 20, 20]


def test_a_consumer_not_started_is_skipped_and_one_that_lingers_is_left_alone() -> None:
    waits, consumer = paced(stand_in(None))
    assert waits_over(waits, consumer, 2) == [None, None]
    waits, consumer = paced(stand_in(500), idle_max_ms=100)
    assert waits_over(waits, consumer, 3) == [500, 500, 500]


def test_aiokafka_still_has_what_the_pacing_reads_and_sets() -> None:
    """The private names fetch_waits relies on (aiokafka 0.14): without them it silently does nothing."""
    assert f"self.{WAIT_ATTRIBUTE}" in inspect.getsource(AiokafkaFetcher._get_actions_per_node)
    assert f"self.{WAIT_ATTRIBUTE} = " in inspect.getsource(AiokafkaFetcher.__init__)
    assert "self._subscription.subscription.assignment" in inspect.getsource(AIOKafkaConsumer.position)
    assert "def assignment" in inspect.getsource(AiokafkaSubscription)
    assert "def state_value" in inspect.getsource(AiokafkaAssignment)
    assert isinstance(TopicPartitionState.has_valid_position, property)
    assert isinstance(TopicPartitionState.position, property)
    assert "self.highwater = " in inspect.getsource(TopicPartitionState)
    assert "self._fetcher = " in inspect.getsource(AIOKafkaConsumer.start)


class BrokenAssignment(Assignment):
    def state_value(self, partition: str) -> PartitionState:
        raise AssertionError("aiokafka changed")


def test_a_consumer_whose_pacing_fails_gets_its_wait_back_and_the_others_are_still_paced() -> None:
    broken, sound = stand_in(), stand_in()
    waits, broken_consumer = paced(broken)
    sound_consumer = cast(AIOKafkaConsumer, sound)
    waits.follow(lambda: sound_consumer)
    waits_over(waits, broken_consumer, 3)  # paced to 80 ms while aiokafka still looked as expected
    broken._subscription.subscription.assignment = BrokenAssignment(broken._subscription.subscription.assignment.states)
    assert waits_over(waits, broken_consumer, 2) == [20, 20]  # its own wait back, and left there
    assert waits.wait_ms(sound_consumer) == 100
