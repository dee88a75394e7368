"""The audit service's Kafka subscribers under FastStream's ``TestKafkaBroker``."""

from __future__ import annotations

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from audit.config import AuditSettings
from audit.subscribers import register_audit_subscriber
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from shared.chassis.kafka import make_broker
from shared.chassis.signing import EventSigner
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.unit.kafka_fakes import (
    NOT_JSON,
    SIGNING_KEY,
    Record,
    dead_letters,
    identity,
    mongo_up,
    published,
)

pytestmark = pytest.mark.unit


# --- audit -------------------------------------------------------------------------------


class AuditLog:
    """The audit store in memory: entries are chained (numbered) per topic partition and kept."""

    def __init__(self) -> None:
        self.entries: list[Document] = []

    async def append(self, entries: list[Document]) -> list[Document]:
        chained = []
        for entry in entries:
            seq = 1 + sum(1 for kept in self.entries if kept["chain"] == entry["chain"])
            chained.append(entry | {"seq": seq})
            self.entries.append(chained[-1])
        return chained


def audit_broker(log: AuditLog) -> tuple[KafkaBroker, AuditSettings, list[Record]]:
    settings = AuditSettings(event_signing_key=SIGNING_KEY)
    broker = make_broker(settings)
    register_audit_subscriber(broker, settings, append=log.append, identity=identity(), probe=mongo_up)
    return broker, settings, dead_letters(broker, settings.topic_commands)


class TestAuditSubscriber:
    async def test_a_command_with_a_valid_key_is_audited_as_that_key(self) -> None:
        log = AuditLog()
        broker, settings, _ = audit_broker(log)
        event = register_event("fraud", "scorer", token=ADMIN_KEY.token)
        value, headers = published(binary_record(event))

        async with TestKafkaBroker(broker) as br:
            await br.publish(value, topic=settings.topic_commands, headers=headers)

        [entry] = log.entries
        assert (entry["topic"], entry["ce_id"], entry["type"]) == (settings.topic_commands, event.id, event.type)
        assert (entry["verified"], entry["actor"], entry["team"]) == ("key", ADMIN_KEY.key_id, "fraud")

    async def test_an_event_a_service_signed_is_audited_as_the_service(self) -> None:
        log = AuditLog()
        broker, settings, _ = audit_broker(log)
        event = CloudEvent(source="/registration", type=messages.MODEL_VERSION_REGISTERED, data={"team": "fraud"})
        value, headers = EventSigner(SIGNING_KEY.encode()).encode(event)

        async with TestKafkaBroker(broker) as br:
            await br.publish(value, topic=settings.topic_events, headers=headers)

        [entry] = log.entries
        assert (entry["verified"], entry["team"]) == ("service", "fraud")

    async def test_a_record_that_only_claims_a_team_is_audited_without_one(self) -> None:
        log = AuditLog()
        broker, settings, _ = audit_broker(log)
        value, headers = published(binary_record(register_event("fraud", "scorer")))

        async with TestKafkaBroker(broker) as br:
            await br.publish(value, topic=settings.topic_commands, headers=headers)

        [entry] = log.entries
        assert (entry["verified"], entry["team"]) == (None, None)
        assert entry["claims"]["team"] == "fraud"

    async def test_an_undecodable_record_is_audited_and_not_dead_lettered(self) -> None:
        log = AuditLog()
        broker, settings, dead = audit_broker(log)

        async with TestKafkaBroker(broker) as br:
            await br.publish(NOT_JSON, topic=settings.topic_commands)

        [entry] = log.entries
        assert (entry["type"], entry["ce_id"]) == ("undecodable", None)
        assert entry["detail"].startswith("not_json: ")
        assert dead == []

    async def test_every_contract_topic_is_audited(self) -> None:
        log = AuditLog()
        broker, settings, _ = audit_broker(log)
        value, headers = published(binary_record(register_event("fraud", "scorer")))

        async with TestKafkaBroker(broker) as br:
            for topic in settings.all_topics():
                await br.publish(value, topic=topic, headers=headers)

        assert [entry["topic"] for entry in log.entries] == settings.all_topics()
