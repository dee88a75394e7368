"""A quiet consumer's fetch wait grows up to the idle limit, and drops back as records come (embedded broker)."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.chassis.fetch_waits import TICK_SECONDS, FetchWaits
from shared.chassis.kafka import client_options, ensure_topics, make_broker
from shared.chassis.settings import CommonSettings
from tests.infra import Infra, private_topics
from tests.kafka_tools import publish_raw
from tests.waiting import until

pytestmark = pytest.mark.integration
CONFIGURED_MS, IDLE_MAX_MS, LINGER_MS = 20, 160, 300


async def topic_of_its_own(infra: Infra) -> CommonSettings:
    settings = private_topics(infra, f"waits-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, partitions=2, with_dlq=False)
    return settings


async def ticked_until(waits: FetchWaits, consumer: AIOKafkaConsumer, wanted: int) -> None:
    async def reached() -> bool:
        waits.tick()
        return waits.wait_ms(consumer) == wanted

    await until(reached, timeout=15, what=f"a fetch wait of {wanted} ms", interval=TICK_SECONDS)


@pytest.fixture
async def settings(infra: Infra) -> AsyncIterator[CommonSettings]:
    yield await topic_of_its_own(infra)


async def test_a_quiet_consumer_waits_longer_and_a_record_brings_its_wait_back(
    infra: Infra, settings: CommonSettings
) -> None:
    consumer = AIOKafkaConsumer(fetch_max_wait_ms=CONFIGURED_MS, enable_auto_commit=False, **client_options(settings))
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.topic_events, p) for p in (0, 1)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        waits = FetchWaits(IDLE_MAX_MS)
        waits.follow(lambda: consumer)
        await ticked_until(waits, consumer, IDLE_MAX_MS)  # 20, 40, 80, 160: nothing came

        await publish_raw(infra.kafka_bootstrap, settings.topic_events, [(b"{}", [], b"a")])
        await ticked_until(waits, consumer, CONFIGURED_MS)  # its high-water mark moved
        for _ in range(4):  # not read yet: behind, so it keeps its configured wait
            waits.tick()
            assert waits.wait_ms(consumer) == CONFIGURED_MS
        got = await consumer.getmany(timeout_ms=5_000)
        assert sum(map(len, got.values())) == 1
        await ticked_until(waits, consumer, IDLE_MAX_MS)  # read, and nothing more came
    finally:
        await consumer.stop()


async def test_every_subscriber_of_a_broker_is_paced_but_one_that_lingers_is_left_alone(
    settings: CommonSettings,
) -> None:
    broker = make_broker(settings.model_copy(update={"kafka_enable_idempotence": False}))  # as on the stand-in

    async def ignore(_: Any) -> None:
        return None

    group = f"waits-{uuid.uuid4().hex[:8]}"
    quick = broker.subscriber(settings.topic_events, group_id=group, batch=True, fetch_max_wait_ms=CONFIGURED_MS)
    lingering = broker.subscriber(
        settings.topic_deploy, group_id=f"{group}-slow", batch=True, fetch_max_wait_ms=LINGER_MS
    )
    quick(ignore)
    lingering(ignore)
    waits = FetchWaits(IDLE_MAX_MS)
    waits.follow_subscribers(broker)
    await broker.start()
    try:
        fast, slow = quick.consumer, lingering.consumer
        assert isinstance(fast, AIOKafkaConsumer) and isinstance(slow, AIOKafkaConsumer)

        async def assigned() -> bool:
            return bool(fast.assignment()) and bool(slow.assignment())

        await until(assigned, what="both groups' partitions")
        await ticked_until(waits, fast, IDLE_MAX_MS)
        for _ in range(4):  # enough to have cut its wait to the limit
            waits.tick()
        assert waits.wait_ms(slow) == LINGER_MS  # as configured
    finally:
        await broker.stop()
