"""Consumer lag per topic-partition, from committed and end offsets.

Asking the broker (not the consumer's own position) means the number is right whichever
replica owns a partition, is the same on the embedded broker and on Kafka, and still moves
when the consumer is stuck: exactly when it matters.
"""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from shared.kafka import admin_client, offsets_consumer
from shared.metrics import CONSUMER_LAG
from shared.settings import CommonSettings

log = structlog.get_logger(__name__)


class LagMonitor:
    """Samples the lag of this service's consumer groups every ``interval`` seconds."""

    def __init__(self, settings: CommonSettings, groups: dict[str, list[str]], *, interval: float) -> None:
        self._settings, self._groups, self._interval = settings, groups, interval

    async def sample(self) -> dict[tuple[str, str, int], int]:
        """Set and return the lag of every (group, topic, partition)."""
        admin, consumer = admin_client(self._settings), offsets_consumer(self._settings)
        await admin.start()
        try:
            await consumer.start()
            try:
                return await self._sample(admin, consumer)
            finally:
                await consumer.stop()
        finally:
            await admin.close()

    async def _sample(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> dict[tuple[str, str, int], int]:
        topics = sorted({topic for group_topics in self._groups.values() for topic in group_topics})
        described = await admin.describe_topics(topics)
        partitions = [
            TopicPartition(entry["topic"], part["partition"]) for entry in described for part in entry["partitions"]
        ]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        lags: dict[tuple[str, str, int], int] = {}
        for group, group_topics in self._groups.items():
            mine = [tp for tp in partitions if tp.topic in group_topics]
            committed = await admin.list_consumer_group_offsets(group, partitions=mine)
            for tp in mine:
                done = committed.get(tp)
                # No commit yet: the group starts at the earliest offset (auto_offset_reset=earliest).
                position = done.offset if done is not None and done.offset >= 0 else starts[tp]
                lag = max(0, ends[tp] - position)
                CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
                lags[(group, tp.topic, tp.partition)] = lag
        return lags

    async def run(self) -> None:
        """Sample forever; a failed sample keeps the last values and is retried next time."""
        while True:
            try:
                await self.sample()
            except Exception as exc:  # the broker may be away; readiness reports that, not this loop
                log.warning("consumer lag sample failed", error=f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(self._interval)
