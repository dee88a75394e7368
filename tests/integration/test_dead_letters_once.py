"""An undecodable record is dead-lettered once, though the batch it came in is retried."""

import uuid
from typing import Any, cast

import pytest

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.reports import Report
from deploy_tracker.subscribers import register_report_subscriber
from registry_contract import messages
from registry_contract.auth import Principal
from shared.chassis.identity import RecordIdentity
from shared.chassis.kafka import ensure_topics, make_broker
from shared.chassis.keystore import KeyIntrospectionUnavailable
from shared.chassis.signing import EventSigner
from tests.factories import ADMIN_KEY, bearer_event, binary_record
from tests.infra import Infra, private_topics
from tests.kafka_tools import Collector, publish_raw
from tests.waiting import until

pytestmark = pytest.mark.integration
GARBAGE = b"\x00 not an event \xff"


class AwayOnce:
    """Registration unreachable for the first key lookup, then answering."""

    def __init__(self) -> None:
        self.asked = 0

    async def authenticate(self, token: str | None) -> Principal | None:
        self.asked += 1
        if self.asked == 1:
            raise KeyIntrospectionUnavailable("registration unreachable for a key lookup (authenticate)")
        return Principal(key_id=ADMIN_KEY.key_id, team="fraud", scopes=frozenset({"deployments:write"}))


async def test_a_batch_retried_for_an_outage_dead_letters_its_garbage_once(infra: Infra) -> None:
    prefix = f"once-{uuid.uuid4().hex[:8]}"
    quick = {
        "kafka_enable_idempotence": infra.idempotence,
        "consumer_group": f"g-{prefix}",
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 500,
        "kafka_fetch_max_wait_ms": 20,
        "consumer_backoff_seconds": 0.1,
    }
    settings = DeployTrackerSettings(**(private_topics(infra, prefix).model_dump() | quick))
    await ensure_topics(settings, partitions=1)
    keys = AwayOnce()
    # A bearer report's key is checked with registration (KAFKA_ACCEPT_BEARER_KEYS): the first
    # check fails, so the batch (the garbage with it) is sought back and handled again.
    identity = RecordIdentity(
        keystore=cast(Any, keys), signer=EventSigner(infra.signing_key.encode()), accept_bearer=True
    )
    handled: list[Report] = []

    async def handle_batch(reports: list[Report]) -> None:
        handled.extend(reports)

    async def up() -> bool:
        return True

    data = {"team": "fraud", "name": "m", "version": "1.0.0", "status": "deployed", "environment": "prod"}
    value, headers = binary_record(bearer_event(messages.DEPLOY_STATUS_REPORTED, data, token=ADMIN_KEY.token))
    broker = make_broker(settings)
    register_report_subscriber(broker, settings, handle_batch=handle_batch, identity=identity, probe=up)
    async with Collector(infra.kafka_bootstrap, f"{settings.topic_deploy}.dlq") as dead:
        await publish_raw(infra.kafka_bootstrap, settings.topic_deploy, [(GARBAGE, [], b"k"), (value, headers, b"k")])
        await broker.start()
        try:

            async def reported() -> bool:
                return bool(handled)

            await until(reported, timeout=30, what="the report handled after the retry")
            await dead.wait_for(lambda r: r.value == GARBAGE)
        finally:
            await broker.stop()
    assert keys.asked >= 2  # the batch was retried
    assert [r.value for r in dead.records] == [GARBAGE]  # and its garbage dead-lettered once
