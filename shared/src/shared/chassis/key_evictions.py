"""Revoked keys and deleted trust rules leave every replica's caches as their event arrives.

``api_key_revoked`` drops the key from the key store; ``trust_rule_deleted`` drops every token
principal the rule admitted (and the rule's id from the key store, which a service acting for a
token's caller names); ``trust_rule_created`` and ``trust_rule_deleted`` drop the cached refusals of
tokens, which the changed rules may now admit.

Each process follows ``registry.events`` from its end on every partition, outside any consumer
group (every replica must see every revocation), and drops the revoked key from its
:class:`~shared.chassis.keystore.KeyStore`: a revocation takes effect everywhere as fast as the event
travels, not after ``KEY_CACHE_SECONDS``, which stays the bound if the broker is away. Only events
a service signed count; nothing else on the topic is read. Each (re)start of the task, once
positioned, clears the key cache: a revocation published while it was down is not missed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter

from registry_contract.identity_events import API_KEY_REVOKED, TRUST_RULE_CREATED, TRUST_RULE_DELETED
from shared.chassis.federation import Federation
from shared.chassis.kafka import TAKE_RECORDS, client_options
from shared.chassis.keystore import KeyStore
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import EventSigner

log = structlog.get_logger(__name__)
FETCH_WAIT_MS = 500  # idle polls stay rare; Kafka answers as a record lands, the embedded broker within this
KEYS_EVICTED = Counter(
    "registry_key_evictions_total", "Revoked keys dropped from this process's key cache as their event arrived"
)


# A new rule may admit a token refused a moment ago: its event drops the cached refusals too.
_ID_FIELDS = {
    API_KEY_REVOKED.encode(): "key_id",
    TRUST_RULE_CREATED.encode(): "rule_id",
    TRUST_RULE_DELETED.encode(): "rule_id",
}


class KeyEvictions:
    """Follows the events topic and tells the key store to forget each key a service revoked."""

    def __init__(
        self, settings: CommonSettings, keystore: KeyStore, signer: EventSigner, federation: Federation | None = None
    ) -> None:
        self._settings, self._keystore, self._signer = settings, keystore, signer
        self.federation = federation
        self.following = asyncio.Event()  # set once positioned at the end of every partition

    def apply(self, records: Iterable[Any]) -> list[str]:
        """Forget the keys ``records`` revoke (signed ``api_key_revoked`` events only); return their ids."""
        forgotten = []
        for record in records:
            field = _ID_FIELDS.get(_header(record, "ce_type") or b"")
            if field is None or not self._signer.verify(record.value, record.headers or ()):
                continue
            try:
                key_id = json.loads(record.value)[field]
            except (ValueError, TypeError, KeyError):
                continue
            if isinstance(key_id, str):
                self._keystore.forget(key_id)
                if self.federation is not None:
                    self.federation.forget(key_id)
                forgotten.append(key_id)
        if forgotten:
            KEYS_EVICTED.inc(len(forgotten))
            log.info("revoked keys dropped from the key cache", keys=forgotten)
        return forgotten

    async def run(self) -> None:
        """Follow the topic from its end until cancelled."""
        consumer = AIOKafkaConsumer(
            client_id=f"{self._settings.service_name}-key-evictions",
            enable_auto_commit=False,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            **client_options(self._settings),
        )
        await consumer.start()
        try:
            topic = self._settings.topic_events
            while not (found := consumer.partitions_for_topic(topic)):
                await consumer.topics()  # the topic may not exist for a moment at start
                await asyncio.sleep(0.5)
            partitions = [TopicPartition(topic, p) for p in sorted(found)]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            for partition in partitions:
                await consumer.position(partition)  # resolves the end now: later events are all seen
            # Revocations published while this task was not following are missed: drop every cached
            # record, so each key is read again from MongoDB (its revocation was written there first).
            self._keystore.clear()
            if self.federation is not None:
                self.federation.clear()
            self.following.set()
            while True:
                batches = await consumer.getmany(timeout_ms=1_000, max_records=TAKE_RECORDS)
                self.apply(record for records in batches.values() for record in records)
                # getmany returns at once, without yielding, while fetched records are buffered:
                # without this, a burst (a bulk load's events) would be read through in one go.
                await asyncio.sleep(0)
        finally:
            self.following.clear()
            await consumer.stop()


def _header(record: Any, name: str) -> bytes | None:
    return next((bytes(raw) for key, raw in record.headers or () if key == name), None)
