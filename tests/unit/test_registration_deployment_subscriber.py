"""Registration's subscriber of the tracker's status changes under FastStream's ``TestKafkaBroker``."""

from __future__ import annotations

import uuid

import pytest
from faststream.kafka import TestKafkaBroker

from registration.config import RegistrationSettings
from registration.deployments import InMemoryDeployedEnvironments
from registration.subscribers import register_deployment_subscriber
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.ids import version_id
from shared.chassis.kafka import make_broker
from shared.chassis.signing import EventSigner
from tests.unit.kafka_fakes import SIGNING_KEY, identity, mongo_up, published

pytestmark = pytest.mark.unit
VERSION = version_id("fraud", "card", "1.0.0")


def changed(status: str, revision: int, *, event_type: str = messages.DEPLOYMENT_STATUS_CHANGED) -> CloudEvent:
    data = {"model_id": "m", "team": "fraud", "name": "card", "version": "1.0.0", "environment": "prod"}
    return CloudEvent(
        id=uuid.uuid4().hex,
        source="/registry/deploy-tracker",
        type=event_type,
        revision=revision,
        data=data | {"status": status, "previous_status": None, "overall_status": status, "report_id": "r"},
    )


async def test_signed_status_changes_are_recorded_and_anything_else_is_skipped() -> None:
    settings = RegistrationSettings(event_signing_key=SIGNING_KEY)
    broker = make_broker(settings)
    table = InMemoryDeployedEnvironments()
    register_deployment_subscriber(broker, settings, deployments=table, identity=identity(), probe=mongo_up)
    signer = EventSigner(SIGNING_KEY.encode())
    async with TestKafkaBroker(broker) as br:
        value, headers = signer.encode(changed("deployed", 5))
        await br.publish(value, topic=settings.topic_events, headers=headers)
        # Unsigned: anyone could write it to mark a version undeployed and have it deleted.
        value, headers = published(changed("retired", 6).to_kafka())
        await br.publish(value, topic=settings.topic_events, headers=headers)
        # Signed but of another type: skipped by its ce_type, never decoded.
        value, headers = signer.encode(changed("retired", 7, event_type=messages.MODEL_VERSION_REGISTERED))
        await br.publish(value, topic=settings.topic_events, headers=headers)
        # Signed, but its data is not a status change registration can read.
        bad = changed("retired", 8).model_copy(update={"data": {"environment": "a.b"}})
        value, headers = signer.encode(bad)
        await br.publish(value, topic=settings.topic_events, headers=headers)
    assert await table.of([VERSION]) == {VERSION: {"prod": "deployed"}}
