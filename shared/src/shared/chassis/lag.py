"""Consumer lag per topic-partition, from committed and end offsets.

Asking the broker (not the consumer's own position) means the number is right whichever
replica owns a partition, is the same on the embedded broker and on Kafka, and still moves
when the consumer is stuck: exactly when it matters.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from shared.chassis.kafka import admin_client, offsets_consumer
from shared.chassis.logs import describe
from shared.chassis.metrics import CONSUMER_LAG, CONSUMER_STALLED
from shared.chassis.settings import CommonSettings
from shared.chassis.supervision import stop_if_cancelled

log = structlog.get_logger(__name__)


class LagMonitor:
    """Samples the lag of this service's consumer groups every ``interval`` seconds."""

    def __init__(self, settings: CommonSettings, groups: dict[str, list[str]], *, interval: float) -> None:
        self._settings, self._groups, self._interval = settings, groups, interval
        self._stall_after = settings.consumer_stall_seconds
        # Per group: the committed offsets last seen and when they last moved.
        self._progress: dict[str, tuple[dict[tuple[str, int], int], float]] = {}
        self._status: dict[str, dict[str, Any]] = {}

    def consumers(self) -> dict[str, dict[str, Any]]:
        """Lag and progress of each group at the last sample (the ``consumers`` field of ``/readyz``)."""
        return dict(self._status)

    def _track_progress(self, group: str, committed: dict[tuple[str, int], int], lag: int) -> None:
        """A group is stalled when it has lag and its committed offsets have not moved for a while."""
        now = time.monotonic()
        previous = self._progress.get(group)
        moved_at = now if previous is None or previous[0] != committed else previous[1]
        self._progress[group] = (committed, moved_at)
        idle = now - moved_at
        stalled = lag > 0 and idle > self._stall_after
        CONSUMER_STALLED.labels(group).set(1 if stalled else 0)
        self._status[group] = {"lag": lag, "seconds_since_progress": round(idle, 1), "stalled": stalled}
        if stalled:
            log.warning("consumer group is stalled", group=group, lag=lag, seconds_since_progress=round(idle))

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
            positions: dict[tuple[str, int], int] = {}
            for tp in mine:
                done = committed.get(tp)
                # No commit yet: the group starts at the earliest offset (auto_offset_reset=earliest).
                position = done.offset if done is not None and done.offset >= 0 else starts[tp]
                positions[(tp.topic, tp.partition)] = position
                lag = max(0, ends[tp] - position)
                CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
                lags[(group, tp.topic, tp.partition)] = lag
            self._track_progress(group, positions, sum(lags[(group, tp.topic, tp.partition)] for tp in mine))
        return lags

    async def run(self) -> None:
        """Sample forever; a failed sample keeps the last values and is retried next time."""
        while True:
            try:
                await self.sample()
            except Exception as exc:  # the broker may be away; readiness reports that, not this loop
                log.warning("consumer lag sample failed", error=describe(exc, limit=300))
            stop_if_cancelled()  # aiokafka's own waits may have swallowed a shutdown's cancellation
            await asyncio.sleep(self._interval)
