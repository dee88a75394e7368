"""A revoked key leaves every replica's key cache when its event arrives, not when the cache expires."""

import asyncio
import uuid
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from registration.storage import API_KEYS
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import API_KEY_REVOKED, ApiKeyChanged
from shared.chassis.kafka import TAKE_RECORDS, ensure_topics
from shared.chassis.key_evictions import KeyEvictions
from shared.chassis.keystore import MongoKeyStore, issue_key
from shared.chassis.signing import EventSigner
from tests.infra import Infra, private_topics
from tests.kafka_tools import publish_raw
from tests.waiting import LoopTurns, until

pytestmark = pytest.mark.integration
HOUR = 3600.0


def revocation(key_id: str, signer: EventSigner) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    data = ApiKeyChanged(team="fraud", actor="adm00001", key_id=key_id, scopes=["models:read"])
    event = CloudEvent(source="/registry/registration", type=API_KEY_REVOKED, data=data.model_dump(mode="json"))
    value, headers = signer.encode(event)
    return value, [(name, raw.encode()) for name, raw in headers.items()], b"fraud"


async def test_a_revocation_event_evicts_the_key_from_a_cache_that_would_keep_it_an_hour(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings = private_topics(infra, f"evict-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, partitions=1)
    keys = mongo_database[API_KEYS]
    keystore = MongoKeyStore(keys, ttl=HOUR)
    revoked, _ = await issue_key(keys, team="fraud", name="a", scopes=["models:read"], created_by="t")
    forged, _ = await issue_key(keys, team="fraud", name="b", scopes=["models:read"], created_by="t")
    evictions = KeyEvictions(settings, keystore, EventSigner(infra.signing_key.encode()))
    task = asyncio.create_task(evictions.run())
    try:
        await asyncio.wait_for(evictions.following.wait(), 30)  # (its start clears the cache)
        for key in (revoked, forged):
            assert await keystore.authenticate(key.token) is not None  # cached for an hour
            await keys.update_one({"_id": key.key_id}, {"$set": {"revoked": True}})
            assert await keystore.authenticate(key.token) is not None, "the cache still holds it"
        # Unsigned (another producer's), then signed (a service's), in one partition: in this order.
        await publish_raw(
            infra.kafka_bootstrap,
            settings.topic_events,
            [
                revocation(forged.key_id, EventSigner(b"not-the-services-key" * 2)),
                revocation(revoked.key_id, EventSigner(infra.signing_key.encode())),
            ],
        )

        async def refused() -> bool:
            return await keystore.authenticate(revoked.token) is None

        await until(refused, timeout=5, what="the revoked key evicted and refused")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # The forged event arrived first and evicted nothing: its key is still served from the cache.
    assert await keystore.authenticate(forged.token) is not None


async def test_a_revocation_published_while_the_task_was_down_is_not_served_from_the_cache_after_its_restart(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings = private_topics(infra, f"evict-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, partitions=1)
    keys = mongo_database[API_KEYS]
    keystore = MongoKeyStore(keys, ttl=HOUR)
    key, _ = await issue_key(keys, team="fraud", name="a", scopes=["models:read"], created_by="t")
    assert await keystore.authenticate(key.token) is not None  # cached for an hour
    # Revoked, and its event published, while no evictions task followed the topic.
    await keys.update_one({"_id": key.key_id}, {"$set": {"revoked": True}})
    await publish_raw(infra.kafka_bootstrap, settings.topic_events, [revocation(key.key_id, infra_signer(infra))])
    assert await keystore.authenticate(key.token) is not None, "the cache still holds it"
    evictions = KeyEvictions(settings, keystore, infra_signer(infra))
    task = asyncio.create_task(evictions.run())  # (re)started: follows from the topic's end
    try:
        await asyncio.wait_for(evictions.following.wait(), 30)
        assert await keystore.authenticate(key.token) is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def infra_signer(infra: Infra) -> EventSigner:
    return EventSigner(infra.signing_key.encode())


async def test_a_burst_of_events_is_read_a_slice_at_a_time_with_the_event_loop_free_between_slices(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every service runs this task beside its requests: reading a burst through in one go (the
    # consumer hands over buffered records without yielding) held every request behind it.
    settings = private_topics(infra, f"evict-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, partitions=1)
    evictions = KeyEvictions(settings, MongoKeyStore(mongo_database[API_KEYS], ttl=HOUR), EventSigner(b"s" * 32))
    apply = evictions.apply
    burst = 1_000
    async with LoopTurns() as turns:

        def counted(records: Any) -> list[str]:
            records = list(records)
            if records:
                turns.step(len(records))
            return apply(records)

        monkeypatch.setattr(evictions, "apply", counted)
        task = asyncio.create_task(evictions.run())
        try:
            await asyncio.wait_for(evictions.following.wait(), 30)
            forged = EventSigner(b"not-the-services-key" * 2)  # read and dropped: the reading is what counts
            await publish_raw(
                infra.kafka_bootstrap, settings.topic_events, [revocation(f"k{i:07d}", forged) for i in range(burst)]
            )

            async def all_read() -> bool:
                return turns.records() >= burst

            await until(all_read, timeout=30, what="the burst read")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert len(turns.steps) >= burst // TAKE_RECORDS and max(count for count, _ in turns.steps) <= TAKE_RECORDS
    assert turns.free_between_steps(), turns.steps
