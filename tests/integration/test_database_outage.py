"""A MongoDB outage while commands arrive loses nothing: the batch is retried once it returns."""

import uuid
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from registration.config import RegistrationSettings
from registry_cli.config import StackSettings, free_port
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from shared.chassis.kafka import ensure_topics
from shared.chassis.metrics import CONSUMER_BATCHES_RETRIED
from tests.factories import ADMIN_KEY, binary_record, register_event, store_admin_key
from tests.infra import Infra
from tests.integration.test_registration_consumer import running
from tests.kafka_tools import Collector, caused_by, publish_raw
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.own_stack]


async def test_commands_published_during_an_outage_land_after_it(infra: Infra, tmp_path: Path) -> None:
    if infra.stack is None:
        pytest.skip("needs the embedded stand-ins: it stops and restarts its own database server")
    own = EmbeddedStack(StackSettings(mongo_port=free_port(), kafka_port=free_port(), data_dir=tmp_path), quiet=True)
    await own.start_infrastructure()  # a private broker and database, so the outage hurts no other test
    keys_client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(own.settings.mongodb_uri)
    await store_admin_key(keys_client[service_database("registration")], signing_key=infra.signing_key)
    await keys_client.close()
    suffix = uuid.uuid4().hex[:8]
    settings = RegistrationSettings(
        kafka_bootstrap_servers=own.settings.kafka_bootstrap,
        mongodb_uri=own.settings.mongodb_uri + "&serverSelectionTimeoutMS=2000",
        kafka_enable_idempotence=False,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_fetch_max_wait_ms=20,
        consumer_group=f"registration-{suffix}",
        consumer_backoff_seconds=0.5,
        event_signing_key=infra.signing_key,
    )
    await ensure_topics(settings, partitions=6)
    command = register_event("fraud", f"outage-{suffix}", token=ADMIN_KEY.token)
    value, headers = binary_record(command)
    key = f"fraud/outage-{suffix}".encode()  # the key of the command and of its event
    marker = f"still down {suffix}".encode()

    async def several_failed_attempts() -> bool:
        retried: float = CONSUMER_BATCHES_RETRIED.labels(settings.consumer_group)._value.get()
        return retried >= 2

    try:
        async with running(settings), Collector(settings.kafka_bootstrap_servers, settings.topic_events) as events:
            assert own.mongo is not None
            await own.mongo.stop()
            await publish_raw(settings.kafka_bootstrap_servers, settings.topic_commands, [(value, headers, key)])
            await until(several_failed_attempts, timeout=60, what="the command failed twice while the database is down")
            # The sentinel, on the event's partition while the outage lasts: no event may come before it.
            await publish_raw(settings.kafka_bootstrap_servers, settings.topic_events, [(marker, [], key)])
            [sentinel] = await events.wait_for(lambda r: r.value == marker)
            assert not events.matching(caused_by(command.id))
            await own.mongo.start()
            [event] = await events.wait_for(caused_by(command.id), timeout=60)
    finally:
        await own.stop()
    assert event.partition == sentinel.partition and event.offset > sentinel.offset  # published after the outage
    assert dict(event.headers)["ce_type"] == b"registry.event.model_version_registered"
