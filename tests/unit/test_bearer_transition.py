"""The subscribers under ``TestKafkaBroker``: why a record proves nothing reaches its sender, and an
accepted bearer key goes no further than the subscriber."""

from __future__ import annotations

import pytest
from aiokafka.admin import NewTopic
from faststream.kafka import TestKafkaBroker

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.reports import Report
from deploy_tracker.subscribers import register_report_subscriber
from registration.commands import Command, Outcome
from registration.config import RegistrationSettings
from registration.subscribers import register_command_subscriber
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.record_signing import RecordProof
from shared.chassis import kafka
from shared.chassis.identity import BEARER_REFUSED
from shared.chassis.kafka import make_broker
from shared.chassis.keystore import MongoKeyStore
from shared.chassis.ratelimit import RateLimiter
from tests.factories import ADMIN_KEY, bearer_event, binary_record, register_data
from tests.unit.kafka_fakes import SIGNING_KEY, identity, mongo_up, published

pytestmark = pytest.mark.unit


async def _commands(*, accept_bearer: bool) -> list[Command]:
    handled: list[Command] = []

    async def handle_batch(commands: list[Command]) -> list[Outcome]:
        handled.extend(commands)
        return [Outcome(c.event.id, CloudEvent(source="/r", type=messages.MODEL_VERSION_REGISTERED)) for c in commands]

    settings = RegistrationSettings(event_signing_key=SIGNING_KEY)
    broker = make_broker(settings)
    register_command_subscriber(
        broker,
        settings,
        handle_batch=handle_batch,
        identity=identity(accept_bearer=accept_bearer),
        limiter=RateLimiter(rate=100, burst=100),
        probe=mongo_up,
    )
    event = bearer_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", "m"), token=ADMIN_KEY.token)
    async with TestKafkaBroker(broker) as br:
        value, headers = published(binary_record(event))
        await br.publish(value, topic=settings.topic_commands, headers=headers)
    return handled


async def test_a_bearer_command_is_refused_by_default_and_its_handler_is_told_why() -> None:
    [command] = await _commands(accept_bearer=False)
    assert (command.principal, command.unproven) == (None, BEARER_REFUSED)
    assert command.event.authorization is None  # the key goes no further than the subscriber


async def test_a_bearer_command_accepted_in_transition_reaches_the_handler_without_its_key() -> None:
    [command] = await _commands(accept_bearer=True)
    assert command.principal is not None and command.principal.key_id == ADMIN_KEY.key_id
    assert command.event.authorization is None


async def test_a_bearer_report_is_refused_by_default_and_the_tracker_is_told_why() -> None:
    reports: list[Report] = []

    async def handle_batch(batch: list[Report]) -> None:
        reports.extend(batch)

    settings = DeployTrackerSettings(event_signing_key=SIGNING_KEY)
    broker = make_broker(settings)
    register_report_subscriber(broker, settings, handle_batch=handle_batch, identity=identity(), probe=mongo_up)
    data = {"team": "fraud", "name": "m", "version": "1.0.0", "status": "deployed"}
    event = bearer_event(messages.DEPLOY_STATUS_REPORTED, data, token=ADMIN_KEY.token)
    async with TestKafkaBroker(broker) as br:
        value, headers = published(binary_record(event))
        await br.publish(value, topic=settings.topic_deploy, headers=headers)
    [report] = reports
    assert (report.principal, report.unproven, report.event.authorization) == (None, BEARER_REFUSED, None)


async def test_a_verifier_that_cannot_be_fetched_fails_the_batch_instead_of_refusing_the_record() -> None:
    # Registration unreachable is transient: the consumer retries; nothing is answered unauthenticated.
    class Keys:
        async def find_one(self, query: dict[str, str]) -> dict[str, object]:
            return {"_id": query["_id"], "team": "fraud", "scopes": [], "secret_hash": "x", "verifier": "sealed"}

    async def unreachable(_key_id: str, _record: object) -> bytes | None:
        raise ConnectionError("registration is down")

    store = MongoKeyStore(Keys(), verifiers=unreachable)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await store.verify(RecordProof("abcdefgh", "v1=00", "canonical", time_sent=True))


async def test_the_topics_producers_sign_for_keep_the_brokers_append_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The signature window is then judged on when the broker took a record, not on when a
    # consumer that was down for a while gets to it.
    created: list[NewTopic] = []

    class Admin:
        async def start(self) -> None: ...
        async def close(self) -> None: ...
        async def list_topics(self) -> list[str]:
            return []

        async def create_topics(self, topics: list[NewTopic]) -> None:
            created.extend(topics)

    monkeypatch.setattr(kafka, "admin_client", lambda _settings: Admin())
    settings = RegistrationSettings(event_signing_key=SIGNING_KEY)
    await kafka.ensure_topics(settings, partitions=6)
    append_time = {t.name for t in created if t.topic_configs.get("message.timestamp.type") == "LogAppendTime"}
    assert append_time == {settings.topic_commands, settings.topic_deploy}
