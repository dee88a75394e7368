"""The gauges that page someone: outbox backlog and age while Kafka refuses, consumer lag while a group is stuck."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from shared.chassis.kafka import ensure_topics
from shared.chassis.lag import LagMonitor
from shared.chassis.metrics import CONSUMER_LAG, CONSUMER_STALLED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from shared.outbox.log import MongoOutboxLog
from shared.outbox.relay import OutboxRelay
from shared.outbox.rows import outbox_row
from tests.infra import Infra, private_topics

pytestmark = pytest.mark.integration


async def test_outbox_backlog_and_age_grow_while_publishing_fails_and_clear_after(
    mongo: AsyncMongoClient[dict[str, object]], db_name: str
) -> None:
    db = mongo[db_name]
    log = MongoOutboxLog(db["outbox"], db["relay_checkpoints"], writer=f"w-{uuid.uuid4().hex[:6]}")
    kafka_up = False
    published: list[Document] = []

    async def publish(rows: list[Document]) -> list[tuple[Document, str]]:
        if not kafka_up:
            raise ConnectionError("broker unreachable")
        published.extend(rows)
        return []

    name = f"test_{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(repo=log, publish=publish, batch_size=100, interval=0.1, name=name)
    await log.register_writer()
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    rows = [
        outbox_row(CloudEvent(source="/t", type="t", data={}, time=two_minutes_ago), key="k", team="a", model_id=None)
        for _ in range(3)
    ]

    async def write(session: AsyncClientSession) -> None:
        await db["outbox"].insert_many(rows, session=session)

    await log.commit_numbered(mongo, rows, write)
    with pytest.raises(ConnectionError):
        await relay.drain()
    await relay.sample()
    assert OUTBOX_BACKLOG.labels(name)._value.get() == 3
    assert 110 < OUTBOX_OLDEST_AGE.labels(name)._value.get() < 600

    kafka_up = True
    assert await relay.drain() == 3 and len(published) == 3
    await relay.sample()
    assert OUTBOX_BACKLOG.labels(name)._value.get() == 0
    assert OUTBOX_OLDEST_AGE.labels(name)._value.get() == 0


async def test_consumer_lag_is_end_minus_committed_per_partition(infra: Infra) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"stuck-{uuid.uuid4().hex[:6]}"
    settings = private_topics(infra, topic)
    await ensure_topics(settings, partitions=2, with_dlq=False)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        for i in range(10):  # six records on partition 0, four on partition 1
            await producer.send_and_wait(topic, b"x", partition=0 if i < 6 else 1)
    finally:
        await producer.stop()
    monitor = LagMonitor(settings, {group: [topic]}, interval=1)

    never_committed = await monitor.sample()
    assert sum(never_committed.values()) == 10  # a group that never ran owes everything

    # The group handles three records of partition 0 and then gets stuck.
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 3})
    finally:
        await consumer.stop()
    stuck = await monitor.sample()
    assert stuck == {(group, topic, 0): 3, (group, topic, 1): 4}
    assert CONSUMER_LAG.labels(group, topic, "0")._value.get() == 3
    assert CONSUMER_LAG.labels(group, topic, "1")._value.get() == 4


async def test_a_group_with_lag_that_does_not_move_is_reported_stalled_and_moving_clears_it(infra: Infra) -> None:
    # A consumer stuck on a poison batch still answers /readyz with 200: only this gauge shows it.
    topic, group = f"stall-{uuid.uuid4().hex[:8]}", f"stalled-{uuid.uuid4().hex[:6]}"
    settings = private_topics(infra, topic).model_copy(update={"consumer_stall_seconds": 0.2})
    await ensure_topics(settings, partitions=1, with_dlq=False)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(topic, b"x", partition=0)
    finally:
        await producer.stop()
    monitor = LagMonitor(settings, {group: [topic]}, interval=1)
    await monitor.sample()
    assert monitor.consumers()[group]["stalled"] is False  # lag, but just seen: not yet
    await asyncio.sleep(0.3)  # the clock is what is tested: lag unmoved for longer than the 0.2 s stall window
    await monitor.sample()
    assert monitor.consumers()[group] | {"seconds_since_progress": 0} == {
        "lag": 3,
        "seconds_since_progress": 0,
        "stalled": True,
    }
    assert CONSUMER_STALLED.labels(group)._value.get() == 1
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 3})  # it caught up
    finally:
        await consumer.stop()
    await monitor.sample()
    assert monitor.consumers()[group]["stalled"] is False and CONSUMER_STALLED.labels(group)._value.get() == 0
