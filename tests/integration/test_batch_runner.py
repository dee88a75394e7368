"""The one consumer mechanism every service uses, on the real broker: poison is isolated, outages wait."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
import structlog
from faststream.kafka import KafkaBroker
from pymongo.errors import AutoReconnect

from shared.chassis.consuming import Records, batch_subscriber
from shared.chassis.kafka import ensure_topics, make_broker
from shared.chassis.settings import CommonSettings
from tests.infra import Infra, private_topics
from tests.kafka_tools import Collector, header, publish_raw
from tests.waiting import LoopTurns, until

pytestmark = pytest.mark.integration
Handler = Callable[[Records], Awaitable[None]]
SENTINEL = b"poison sentinel"  # a record every handler here refuses: it always ends in the dead-letter topic


@pytest.fixture
async def topics(infra: Infra) -> CommonSettings:
    settings = private_topics(infra, f"runner-{uuid.uuid4().hex[:8]}").model_copy(
        update={
            "kafka_enable_idempotence": infra.idempotence,
            "kafka_session_timeout_ms": 2000,
            "kafka_heartbeat_interval_ms": 500,
            "kafka_fetch_max_wait_ms": 20,
            "consumer_backoff_seconds": 0.1,
        }
    )
    await ensure_topics(settings, partitions=1)
    return settings


async def consuming(settings: CommonSettings, handler: Handler, *, probe: Callable[[], Awaitable[bool]]) -> KafkaBroker:
    broker = make_broker(settings)
    batch_subscriber(
        broker,
        settings,
        settings.topic_commands,
        group=f"g-{uuid.uuid4().hex[:8]}",
        max_records=50,
        timeout_ms=200,
        probe=probe,
    )(handler)
    await broker.start()
    return broker


async def up() -> bool:
    return True


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """``condition`` as a check for :func:`until`."""

    async def check() -> bool:
        return condition()

    return check


async def letters_before_a_sentinel(infra: Infra, topics: CommonSettings, dead: Collector) -> list[bytes]:
    """What was dead-lettered before a poison sentinel sent now on key ``k``; waits for the sentinel's letter.

    One partition, one key: the sentinel is handled after every record sent before it, so their
    letters, if any, are on the dead-letter topic ahead of its own.
    """
    await publish_raw(infra.kafka_bootstrap, topics.topic_commands, [(SENTINEL, [], b"k")])
    await dead.wait_for(lambda r: r.value == SENTINEL)
    letters = [r.value for r in dead.records]
    return letters[: letters.index(SENTINEL)]


class TestPoisonIsolation:
    async def test_a_record_that_always_fails_is_dead_lettered_and_the_rest_are_handled(
        self, topics: CommonSettings, infra: Infra
    ) -> None:
        handled: list[bytes] = []
        attempts: list[bytes] = []

        async def handler(records: Records) -> None:
            attempts.extend(r.value for r in records)
            if any(r.value == b"poison" for r in records):
                raise ValueError("this record can never be stored")
            handled.extend(r.value for r in records)

        records: list[tuple[bytes | None, list[tuple[str, bytes]], bytes]] = [
            (b"first", [], b"k"),
            (b"poison", [("authorization", b"Bearer mr_secret")], b"k"),
            (b"after", [], b"k"),
        ]
        broker = await consuming(topics, handler, probe=up)
        try:
            async with Collector(infra.kafka_bootstrap, f"{topics.topic_commands}.dlq") as dead:
                await publish_raw(infra.kafka_bootstrap, topics.topic_commands, records)
                [letter] = await dead.wait_for(lambda r: True)
                await until(holds(lambda: b"after" in handled), what="the record after the poison handled")
        finally:
            await broker.stop()
        assert handled.count(b"first") >= 1 and b"poison" not in handled
        assert attempts.count(b"poison") >= topics.consumer_max_attempts  # tried, then given up on
        assert letter.value == b"poison"
        assert header(letter, "dlq_reason") == "handler_failed"
        assert "ValueError: this record can never be stored" in (header(letter, "dlq_error") or "")
        assert header(letter, "authorization") is None  # credentials never reach a dead-letter topic


class TestDependencyOutage:
    async def test_a_batch_failing_on_a_dependency_is_retried_not_dead_lettered(
        self, topics: CommonSettings, infra: Infra
    ) -> None:
        handled: list[bytes] = []
        failures = [AutoReconnect("connection refused"), AutoReconnect("connection refused")]

        async def handler(records: Records) -> None:
            if failures:
                raise failures.pop()
            if any(r.value == SENTINEL for r in records):
                raise ValueError("the sentinel is never stored")
            handled.extend(r.value for r in records)

        broker = await consuming(topics, handler, probe=up)
        try:
            with structlog.testing.capture_logs() as logs:
                async with Collector(infra.kafka_bootstrap, f"{topics.topic_commands}.dlq") as dead:
                    await publish_raw(
                        infra.kafka_bootstrap, topics.topic_commands, [(b"a", [], b"k"), (b"b", [], b"k")]
                    )
                    await until(holds(lambda: handled == [b"a", b"b"]), what="both records handled")
                    assert await letters_before_a_sentinel(infra, topics, dead) == []
        finally:
            await broker.stop()
        # A retry's log line says what failed.
        retries = [line for line in logs if line["event"] == "batch failed on a dependency; it will be retried"]
        assert len(retries) == 2 and retries[0]["error"] == "AutoReconnect: connection refused"

    async def test_any_failure_while_the_database_does_not_answer_counts_as_an_outage(
        self, topics: CommonSettings, infra: Infra
    ) -> None:
        handled: list[bytes] = []
        attempts: list[bytes] = []
        database_up = asyncio.Event()

        async def probe() -> bool:
            return database_up.is_set()

        async def handler(records: Records) -> None:
            attempts.extend(r.value for r in records)
            if not database_up.is_set():
                raise RuntimeError("some error a driver raises mid-outage")
            if any(r.value == SENTINEL for r in records):
                raise ValueError("the sentinel is never stored")
            handled.extend(r.value for r in records)

        broker = await consuming(topics, handler, probe=probe)
        try:
            async with Collector(infra.kafka_bootstrap, f"{topics.topic_commands}.dlq") as dead:
                await publish_raw(infra.kafka_bootstrap, topics.topic_commands, [(b"kept", [], b"k")])
                # More failures than a poison record is allowed before it is dead-lettered.
                more_than_poison_gets = holds(lambda: attempts.count(b"kept") > topics.consumer_max_attempts)
                await until(more_than_poison_gets, what='several failed attempts while "down"')
                database_up.set()
                await until(holds(lambda: handled == [b"kept"]), what="the record handled once the database is back")
                assert await letters_before_a_sentinel(infra, topics, dead) == []
        finally:
            await broker.stop()


class TestSharingTheEventLoop:
    async def test_a_backlog_is_handled_a_batch_at_a_time_with_the_event_loop_free_between_batches(
        self, topics: CommonSettings, infra: Infra
    ) -> None:
        # A handler with nothing to write for a batch (registration's deployments consumer skips
        # every event but a status change) awaits nothing that suspends, and the consumer hands
        # over buffered records without yielding: a backlog would be read through in one go,
        # holding the service's requests behind it.
        backlog = 1_000
        await publish_raw(
            infra.kafka_bootstrap, topics.topic_commands, [(b"x%d" % i, [], b"k") for i in range(backlog)]
        )
        async with LoopTurns() as turns:

            async def handler(records: Records) -> None:
                turns.step(len(records))

            broker = await consuming(topics, handler, probe=up)
            try:
                await until(holds(lambda: turns.records() >= backlog), what="the backlog handled")
            finally:
                await broker.stop()
        assert len(turns.steps) >= backlog // 50  # max_records
        assert turns.free_between_steps(), turns.steps
