"""The outbox relay against the real broker: an event the broker refuses for good never blocks the rest."""

import uuid

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession

from registry_contract.envelope import CloudEvent
from shared.chassis.kafka import ensure_topics, make_broker
from shared.chassis.metrics import OUTBOX_PARKED
from shared.chassis.signing import EventSigner
from shared.outbox.log import MongoOutboxLog
from shared.outbox.relay import OutboxRelay, kafka_publisher
from shared.outbox.rows import outbox_row
from tests.infra import Infra, private_topics
from tests.kafka_tools import Collector, header

pytestmark = pytest.mark.integration


async def test_a_refused_event_is_parked_and_the_events_after_it_are_published(
    infra: Infra, mongo: AsyncMongoClient[dict[str, object]], db_name: str
) -> None:
    # An event the broker refuses for good (over its size limit) is parked: retried in order, it would
    # block every later event of its writer, across restarts too, since the outbox is in MongoDB.
    settings = private_topics(infra, f"park-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, partitions=1)
    db = mongo[db_name]
    log = MongoOutboxLog(db["outbox"], db["relay_checkpoints"], writer=f"w-{uuid.uuid4().hex[:6]}")
    await log.register_writer()
    events = [
        CloudEvent(source="/t", type="t", data={"n": 1}),
        CloudEvent(source="/t", type="t", data={"n": 2, "huge": "x" * 2_000_000}),  # over 1 MB
        CloudEvent(source="/t", type="t", data={"n": 3}),
    ]
    rows = [outbox_row(event, key="k", team="a", model_id=None) for event in events]

    async def write(session: AsyncClientSession) -> None:
        await db["outbox"].insert_many(rows, session=session)

    await log.commit_numbered(mongo, rows, write)
    broker = make_broker(settings.model_copy(update={"kafka_enable_idempotence": infra.idempotence}))
    await broker.start()
    name = f"park_{uuid.uuid4().hex[:6]}"
    relay = OutboxRelay(
        repo=log,
        publish=kafka_publisher(broker, settings.topic_events, EventSigner(infra.signing_key.encode())),
        batch_size=100,
        interval=0.1,
        name=name,
    )
    try:
        async with Collector(infra.kafka_bootstrap, settings.topic_events) as seen:
            assert await relay.drain() == 3
            received = await seen.wait_for(lambda r: True, count=2)
    finally:
        await broker.stop()
    assert sorted(header(r, "ce_id") or "" for r in received) == sorted([events[0].id, events[2].id])
    parked = await db["outbox"].find_one({"_id": events[1].id})
    assert parked is not None and "MessageSizeTooLargeError" in str(parked["parked_reason"])
    assert OUTBOX_PARKED.labels(name)._value.get() == 1
    assert await log.pending(log.writer, 10) == []  # the checkpoint moved past it
