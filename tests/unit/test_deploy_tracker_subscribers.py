"""The deploy-tracker service's Kafka subscribers under FastStream's ``TestKafkaBroker``."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.reports import Report
from deploy_tracker.subscribers import register_event_subscriber, register_report_subscriber
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from shared.chassis.kafka import make_broker
from shared.chassis.signing import EventSigner
from tests.factories import ADMIN_KEY, binary_record
from tests.unit.kafka_fakes import (
    NOT_JSON,
    SIGNING_KEY,
    Record,
    dead_letters,
    headers_of,
    identity,
    mongo_up,
    published,
    report_event,
)

pytestmark = pytest.mark.unit


# --- deploy-tracker ----------------------------------------------------------------------


class Tracker:
    """The tracker's report and webhook collaborators in memory."""

    def __init__(self) -> None:
        self.reports: list[Report] = []
        self.fanned_out: list[CloudEvent] = []

    async def handle_batch(self, reports: list[Report]) -> None:
        self.reports.extend(reports)

    async def fan_out(self, events: list[CloudEvent]) -> int:
        self.fanned_out.extend(events)
        return len(events)


def tracker_broker(tracker: Tracker) -> tuple[KafkaBroker, DeployTrackerSettings, list[Record]]:
    settings = DeployTrackerSettings(event_signing_key=SIGNING_KEY)
    broker = make_broker(settings)
    register_report_subscriber(broker, settings, handle_batch=tracker.handle_batch, identity=identity(), probe=mongo_up)
    register_event_subscriber(broker, settings, fan_out=tracker.fan_out, identity=identity(), probe=mongo_up)
    return broker, settings, dead_letters(broker, settings.topic_deploy)


def principals(reports: Sequence[Report]) -> list[str | None]:
    return [report.principal.key_id if report.principal else None for report in reports]


class TestReportSubscriber:
    async def test_a_report_reaches_the_handler_with_its_key_and_an_undecodable_one_is_dead_lettered(self) -> None:
        tracker = Tracker()
        broker, settings, dead = tracker_broker(tracker)
        keyed, anonymous = report_event("fraud", token=ADMIN_KEY.token), report_event("fraud")

        async with TestKafkaBroker(broker) as br:
            await br.publish(NOT_JSON, topic=settings.topic_deploy)
            for event in (keyed, anonymous):
                value, headers = published(binary_record(event))
                await br.publish(value, topic=settings.topic_deploy, headers=headers)

        assert [report.event.id for report in tracker.reports] == [keyed.id, anonymous.id]
        assert principals(tracker.reports) == [ADMIN_KEY.key_id, None]
        assert [headers_of(letter)["dlq_reason"] for letter in dead] == ["not_json"]

    async def test_a_report_a_service_signed_for_a_key_is_that_keys(self) -> None:
        tracker = Tracker()
        broker, settings, _ = tracker_broker(tracker)
        signer = EventSigner(SIGNING_KEY.encode())
        bridged, forged = report_event("fraud"), report_event("fraud")

        async with TestKafkaBroker(broker) as br:
            value, headers = signer.encode(bridged, acting_for=ADMIN_KEY.key_id)
            await br.publish(value, topic=settings.topic_deploy, headers=headers)
            value, headers = published(binary_record(forged))
            await br.publish(value, topic=settings.topic_deploy, headers={**headers, "ce_principal": ADMIN_KEY.key_id})

        assert principals(tracker.reports) == [ADMIN_KEY.key_id, None]


class TestWebhookEventSubscriber:
    async def test_only_events_a_service_signed_are_fanned_out(self) -> None:
        tracker = Tracker()
        broker, settings, _ = tracker_broker(tracker)
        signed, unsigned = (
            CloudEvent(source="/registration", type=messages.MODEL_VERSION_REGISTERED, data={"team": "fraud"})
            for _ in range(2)
        )

        async with TestKafkaBroker(broker) as br:
            value, headers = EventSigner(SIGNING_KEY.encode()).encode(signed)
            await br.publish(value, topic=settings.topic_events, headers=headers)
            value, headers = published(binary_record(unsigned))
            await br.publish(value, topic=settings.topic_events, headers=headers)

        assert [event.id for event in tracker.fanned_out] == [signed.id]
