"""Reading every record of every topic, looking for anything that would authenticate somewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from shared.chassis.keystore import MongoKeyStore

TOKEN = re.compile(rb"mr_[A-Za-z0-9]{8}_[A-Za-z0-9]{43,}")
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}


@dataclass(frozen=True)
class Finding:
    """Where a credential-looking value was found."""

    topic: str
    partition: int
    offset: int
    where: str  # a header's name, or "value"
    token: bytes


async def every_record(bootstrap: str) -> list[Any]:
    """Every record of every topic on the broker, from the start of each partition to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        topics = await consumer.topics()
        partitions = [
            TopicPartition(topic, p) for topic in sorted(topics) for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        records: list[Any] = []
        while wanted:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, batch in batches.items():
                records += [r for r in batch if r.offset < wanted.get(tp, 0)]
            for tp in [tp for tp, end in wanted.items() if await consumer.position(tp) >= end]:
                del wanted[tp]
        return records
    finally:
        await consumer.stop()


def credentials_in(records: list[Any]) -> Iterator[Finding]:
    """Every key-shaped token in any header or value, and every credential header whatever it holds."""
    for record in records:
        places = [(str(name), bytes(raw)) for name, raw in record.headers or ()]
        places.append(("value", bytes(record.value or b"")))
        for where, raw in places:
            tokens = TOKEN.findall(raw)
            if where.lower() in CREDENTIAL_HEADERS and not tokens:
                tokens = [raw.split()[-1] if raw.split() else raw]
            for token in tokens:
                yield Finding(record.topic, record.partition, record.offset, where, token)


async def authenticating(findings: list[Finding], mongodb_uri: str) -> list[Finding]:
    """The findings whose token authenticates in any database of the server that holds API keys."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    try:
        stores = [
            MongoKeyStore(client[name]["api_keys"], ttl=60)
            for name in await client.list_database_names()
            if "api_keys" in await client[name].list_collection_names()
        ]
        live = []
        for finding in findings:
            token = finding.token.decode("utf-8", "replace")
            if any([await store.authenticate(token) is not None for store in stores]):
                live.append(finding)
        return live
    finally:
        await client.close()
