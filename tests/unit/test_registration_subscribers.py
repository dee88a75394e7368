"""Each service's Kafka subscriber under FastStream's ``TestKafkaBroker``: no broker, no database.

``TestKafkaBroker`` hands every ``publish`` to the matching subscribers in-process and returns
after they ran, so what a handler did not receive is proven once ``publish`` returns. It delivers
one record per ``publish`` and one batch per ``publish_batch``; every record is at offset 0.
"""

from __future__ import annotations

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from registration.commands import Command, Outcome
from registration.config import RegistrationSettings
from registration.subscribers import register_command_subscriber
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from shared.chassis.kafka import make_broker
from shared.chassis.ratelimit import RateLimiter
from tests.factories import ADMIN_KEY, binary_record, register_event, structured_record
from tests.unit.kafka_fakes import (
    NOT_JSON,
    SIGNING_KEY,
    Record,
    dead_letters,
    headers_of,
    identity,
    published,
)

ADMIN = Principal(key_id=ADMIN_KEY.key_id, team="platform", scopes=frozenset({"platform:admin"}))

pytestmark = pytest.mark.unit


# --- registration ------------------------------------------------------------------------


class Registration:
    """The registration service's collaborators in memory; commands whose id is in ``poison`` fail."""

    def __init__(self) -> None:
        self.handled: list[Command] = []
        self.attempts: list[list[str]] = []
        self.poison: set[str] = set()
        self.error: Exception = ValueError("this command breaks the handler")
        self.mongo_up = True

    async def handle_batch(self, commands: list[Command]) -> list[Outcome]:
        self.attempts.append([command.event.id for command in commands])
        if any(command.event.id in self.poison for command in commands):
            raise self.error
        self.handled.extend(commands)
        return [Outcome(command.event.id, _registered(command)) for command in commands]

    async def probe(self) -> bool:
        return self.mongo_up

    @property
    def handled_ids(self) -> list[str]:
        return [command.event.id for command in self.handled]


def _registered(command: Command) -> CloudEvent:
    return CloudEvent(source="/registration", type=messages.MODEL_VERSION_REGISTERED, data=command.event.data)


def registration_broker(
    service: Registration, *, limiter: RateLimiter | None = None
) -> tuple[KafkaBroker, RegistrationSettings, list[Record]]:
    settings = RegistrationSettings(
        event_signing_key=SIGNING_KEY, consumer_max_attempts=2, consumer_backoff_seconds=0.0
    )
    broker = make_broker(settings)
    register_command_subscriber(
        broker,
        settings,
        handle_batch=service.handle_batch,
        identity=identity(),
        limiter=limiter or RateLimiter(rate=settings.command_rate_per_second, burst=settings.command_burst),
        probe=service.probe,
    )
    return broker, settings, dead_letters(broker, settings.topic_commands)


class TestCommandSubscriber:
    async def test_a_binary_mode_command_reaches_the_handler_decoded_with_its_principal(self) -> None:
        service = Registration()
        broker, settings, dead = registration_broker(service)
        event = register_event("fraud", "scorer", token=ADMIN_KEY.token)
        value, headers = published(binary_record(event))

        async with TestKafkaBroker(broker) as br:
            await br.publish(value, topic=settings.topic_commands, key=b"fraud/scorer", headers=headers)

        [command] = service.handled
        assert (command.event.id, command.event.type, command.event.data) == (event.id, event.type, event.data)
        assert command.principal == ADMIN
        assert not command.throttled
        assert dead == []

    async def test_a_structured_mode_command_reaches_the_handler_like_a_binary_one(self) -> None:
        service = Registration()
        broker, settings, _ = registration_broker(service)
        event = register_event("fraud", "scorer", token=ADMIN_KEY.token)
        value, headers = published(structured_record(event))

        async with TestKafkaBroker(broker) as br:
            await br.publish(value, topic=settings.topic_commands, headers=headers)

        [command] = service.handled
        assert (command.event.id, command.event.data, command.principal) == (event.id, event.data, ADMIN)

    async def test_a_command_without_a_key_reaches_the_handler_unauthenticated(self) -> None:
        service = Registration()
        broker, settings, _ = registration_broker(service)
        value, headers = published(binary_record(register_event("fraud", "scorer")))

        async with TestKafkaBroker(broker) as br:
            await br.publish(value, topic=settings.topic_commands, headers=headers)

        [command] = service.handled
        assert command.principal is None
        assert command.unproven is not None and "no signature" in command.unproven

    async def test_a_key_over_its_command_rate_marks_the_command_throttled(self) -> None:
        service = Registration()
        limiter = RateLimiter(rate=0.001, burst=1, clock=lambda: 0.0)
        broker, settings, _ = registration_broker(service, limiter=limiter)
        first, second = (register_event("fraud", "scorer", v, token=ADMIN_KEY.token) for v in ("1.0.0", "1.0.1"))

        async with TestKafkaBroker(broker) as br:
            for event in (first, second):
                value, headers = published(binary_record(event))
                await br.publish(value, topic=settings.topic_commands, headers=headers)

        assert [(c.event.id, c.throttled) for c in service.handled] == [(first.id, False), (second.id, True)]

    async def test_an_undecodable_record_is_dead_lettered_without_its_key_and_the_rest_of_its_batch_handled(
        self,
    ) -> None:
        service = Registration()
        broker, settings, dead = registration_broker(service)
        good = register_event("fraud", "scorer")
        good_value, _ = published(structured_record(good))
        headers = {"content-type": "application/cloudevents+json", "authorization": f"Bearer {ADMIN_KEY.token}"}

        async with TestKafkaBroker(broker) as br:
            await br.publish_batch(NOT_JSON, good_value, topic=settings.topic_commands, headers=headers)

        assert service.handled_ids == [good.id]
        [letter] = dead
        assert letter.value == NOT_JSON
        assert letter.topic == f"{settings.topic_commands}.dlq"
        assert headers_of(letter)["dlq_reason"] == "not_json"
        assert headers_of(letter)["dlq_source_topic"] == settings.topic_commands
        assert "authorization" not in headers_of(letter)

    async def test_a_batch_of_only_undecodable_records_never_calls_the_handler(self) -> None:
        service = Registration()
        broker, settings, dead = registration_broker(service)

        async with TestKafkaBroker(broker) as br:
            await br.publish(NOT_JSON, topic=settings.topic_commands)

        assert service.attempts == []
        assert [letter.value for letter in dead] == [NOT_JSON]


class TestBatchFailures:
    """What :class:`shared.chassis.consuming.BatchRunner` does when the handler fails."""

    async def test_a_command_that_keeps_failing_is_isolated_and_dead_lettered_and_the_others_handled(self) -> None:
        service = Registration()
        broker, settings, dead = registration_broker(service)
        events = [register_event("fraud", f"m{i}") for i in range(3)]
        service.poison = {events[2].id}

        async with TestKafkaBroker(broker) as br:
            bodies = [published(structured_record(event))[0] for event in events]
            await br.publish_batch(
                *bodies, topic=settings.topic_commands, headers={"content-type": "application/cloudevents+json"}
            )

        assert sorted(service.handled_ids) == sorted(event.id for event in events[:2])
        assert service.attempts.count([events[2].id]) == settings.consumer_max_attempts
        [letter] = dead
        assert letter.value == bodies[2]
        assert headers_of(letter)["dlq_reason"] == "handler_failed"
        assert headers_of(letter)["dlq_error"] == "ValueError: this command breaks the handler"

    async def test_a_failure_while_mongodb_is_down_dead_letters_nothing_and_fails_the_batch_for_redelivery(
        self,
    ) -> None:
        service = Registration()
        broker, settings, dead = registration_broker(service)
        event = register_event("fraud", "scorer")
        service.poison, service.mongo_up = {event.id}, False
        value, headers = published(binary_record(event))

        async with TestKafkaBroker(broker) as br:
            with pytest.raises(Exception) as raised:
                await br.publish(value, topic=settings.topic_commands, headers=headers)

        assert raised.value.__cause__ is service.error
        assert service.attempts == [[event.id]]  # not split, not retried in place: the batch is sought back
        assert dead == []
