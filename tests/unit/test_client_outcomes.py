"""A producer that waits gets its command's outcome from ``registry.events``, with the write's consistency token."""

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from registry_client.consistency import ConsistencyTokens
from registry_client.kafka import RegistryProducer
from registry_client.outcomes import OutcomeWatcher, outcome_of
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from registry_contract.ids import model_id
from tests.waiting import until

pytestmark = pytest.mark.unit
TOPIC = "registry.events"
CARD = model_id("fraud", "card")
CHANGED, RECORDED = messages.DEPLOYMENT_STATUS_CHANGED, "registry.event.deployment_report_recorded"
REPORT = {
    "team": "fraud",
    "name": "card",
    "version": "1.4.0",
    "environment": "prod",
    "status": "deployed",
    "occurred_at": "2026-11-26T10:00:00Z",
}
REGISTER = {"team": "fraud", "name": "card", "version": "1.4.0", "framework": "xgboost", "artifact_uri": "s3://b/k"}


def outcome_event(
    cause: str,
    event_type: str,
    data: Mapping[str, Any],
    *,
    revision: int | None,
    source: str = "/registry/registration",
) -> CloudEvent:
    return CloudEvent(source=source, type=event_type, causation_id=cause, data=dict(data), revision=revision)


def tracker_event(cause: str, event_type: str, *, revision: int, reason: str | None = None) -> CloudEvent:
    data = {"model_id": CARD, "team": "fraud", "name": "card"} | ({"reason": reason} if reason else {})
    return outcome_event(cause, event_type, data, revision=revision, source="/registry/deploy-tracker")


class Events:
    """Stands in for ``AIOKafkaConsumer`` on ``registry.events``: hands out what the test appends."""

    def __init__(self) -> None:
        self.pending: list[CloudEvent] = []
        self.positioned: list[TopicPartition] = []
        self.stopped = False

    async def start(self) -> None:
        return None

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        return None

    async def position(self, partition: TopicPartition) -> int:
        self.positioned.append(partition)
        return 0

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        await asyncio.sleep(0)
        found, self.pending = self.pending, []
        records = []
        for offset, event in enumerate(found):
            value, headers = event.to_kafka()
            records.append(ConsumerRecord(TOPIC, 0, offset, 0, 0, None, value, None, len(value), -1, headers))
        return {TopicPartition(TOPIC, 0): records} if records else {}

    async def stop(self) -> None:
        self.stopped = True


class Sent:
    """Stands in for ``AIOKafkaProducer``; the registry answers each command as it is sent."""

    def __init__(self, events: Events, answer: Any) -> None:
        self.events, self.answer = events, answer

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        cause = dict(headers)["ce_id"].decode()
        self.events.pending += self.answer(cause)

    async def stop(self) -> None:
        return None


def producer_answering(answer: Any, tokens: ConsistencyTokens | None = None) -> tuple[RegistryProducer, Events]:
    events = Events()
    producer = RegistryProducer("127.0.0.1:1", api_key=None, consistency=tokens)
    producer._producer = Sent(events, answer)
    producer._outcomes = OutcomeWatcher(events, TOPIC, producer.consistency)
    return producer, events


class TestTheOutcomeOfAnEvent:
    def test_registration_s_success_gives_an_r_token(self) -> None:
        event = outcome_event("c1", messages.MODEL_VERSION_REGISTERED, {"model_id": CARD}, revision=77)
        outcome = outcome_of(event)
        assert outcome is not None and outcome.command_id == "c1" and outcome.consistency_token == f"r.{CARD}.77"

    def test_the_tracker_s_gives_a_d_token_and_the_model_id_may_come_from_team_and_name(self) -> None:
        data = {"team": "fraud", "name": "card", "status": "deployed"}
        event = outcome_event(
            "c2", messages.DEPLOYMENT_STATUS_CHANGED, data, revision=5, source="/registry/deploy-tracker"
        )
        outcome = outcome_of(event)
        assert outcome is not None and outcome.consistency_token == f"d.{CARD}.5"

    def test_a_refusal_a_stranger_s_event_or_one_without_revision_gives_no_token(self) -> None:
        rejected = outcome_event("c3", messages.COMMAND_REJECTED, {"model_id": CARD, "reason": "forbidden"}, revision=9)
        stranger = outcome_event("c4", messages.MODEL_VERSION_REGISTERED, {"model_id": CARD}, revision=9, source="/x")
        unrevised = outcome_event("c5", messages.MODEL_VERSION_REGISTERED, {"model_id": CARD}, revision=None)
        outcomes = [outcome_of(event) for event in (rejected, stranger, unrevised)]
        assert [o.consistency_token if o else "none" for o in outcomes] == [None, None, None]
        assert outcomes[0] is not None and outcomes[0].rejected and outcomes[0].reason == "forbidden"

    def test_an_event_that_answers_nothing_is_no_outcome(self) -> None:
        assert outcome_of(CloudEvent(source="/registry/registration", type=messages.MODEL_UPDATED)) is None


class TestPublishAndWait:
    async def test_the_outcome_comes_back_and_its_token_is_kept(self) -> None:
        tokens = ConsistencyTokens()
        producer, events = producer_answering(
            lambda cause: [outcome_event(cause, messages.MODEL_VERSION_REGISTERED, {"model_id": CARD}, revision=123)],
            tokens,
        )
        await producer._outcomes.start()  # type: ignore[union-attr]
        outcome = await producer.publish("register", REGISTER, wait=True, wait_timeout=5)
        await producer.stop()
        assert outcome.type == messages.MODEL_VERSION_REGISTERED and outcome.consistency_token == f"r.{CARD}.123"
        assert tokens.of_model(CARD) == [f"r.{CARD}.123"] and events.stopped
        assert len(events.positioned) == 2  # every partition's end was known before the command left

    async def test_of_two_events_answering_one_report_the_change_answers_with_the_newest_token(self) -> None:
        def answer(cause: str) -> list[CloudEvent]:
            return [tracker_event(cause, RECORDED, revision=8), tracker_event(cause, CHANGED, revision=9)]

        producer, _ = producer_answering(answer)
        await producer._outcomes.start()  # type: ignore[union-attr]
        outcome = await producer.publish("deploy", REPORT, wait=True, wait_timeout=5)
        await producer.stop()
        assert outcome.type == CHANGED and outcome.consistency_token == f"d.{CARD}.9"

    async def test_a_refused_report_is_rejected_and_its_record_s_token_comes_with_it(self) -> None:
        def answer(cause: str) -> list[CloudEvent]:
            refusal = tracker_event(cause, messages.COMMAND_REJECTED, revision=11, reason="not_approved")
            return [refusal, tracker_event(cause, RECORDED, revision=12)]

        producer, _ = producer_answering(answer)
        await producer._outcomes.start()  # type: ignore[union-attr]
        outcome = await producer.publish("deploy", REPORT, wait=True, wait_timeout=5)
        await producer.stop()
        assert outcome.rejected and outcome.reason == "not_approved" and outcome.consistency_token == f"d.{CARD}.12"

    async def test_a_sibling_arriving_after_the_answer_still_adds_its_token(self) -> None:
        producer, events = producer_answering(lambda cause: [tracker_event(cause, CHANGED, revision=20)])
        await producer._outcomes.start()  # type: ignore[union-attr]
        outcome = await producer.publish("deploy", REPORT, wait=True, wait_timeout=5)
        events.pending.append(tracker_event(outcome.command_id, RECORDED, revision=21))

        async def newest_kept() -> bool:
            return producer.consistency.of_model(CARD) == [f"d.{CARD}.21"]

        await until(newest_kept, timeout=5, what="the late record's token kept")
        await producer.stop()
        assert outcome.consistency_token == f"d.{CARD}.20"

    async def test_other_commands_outcomes_are_not_taken_for_this_one(self) -> None:
        def answer(cause: str) -> list[CloudEvent]:
            registered = {"model_id": CARD}
            return [
                outcome_event("someone-else", messages.MODEL_VERSION_REGISTERED, registered, revision=1),
                outcome_event(cause, messages.COMMAND_REJECTED, {"reason": "duplicate_version"}, revision=2),
            ]

        producer, _ = producer_answering(answer)
        await producer._outcomes.start()  # type: ignore[union-attr]
        outcome = await producer.publish("register", REGISTER, wait=True, wait_timeout=5)
        await producer.stop()
        assert outcome.rejected and outcome.reason == "duplicate_version" and outcome.consistency_token is None
        assert len(producer.consistency) == 0

    async def test_no_outcome_in_time_is_a_timeout(self) -> None:
        producer, _ = producer_answering(lambda cause: [])
        await producer._outcomes.start()  # type: ignore[union-attr]
        with pytest.raises(TimeoutError):
            await producer.publish("register", REGISTER, wait=True, wait_timeout=0.05)
        await producer.stop()

    async def test_a_watcher_that_fails_tells_its_waiters_why(self) -> None:
        producer, events = producer_answering(lambda cause: [])

        async def broken(timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
            await asyncio.sleep(0.01)
            raise ConnectionError("the broker went away")

        events.getmany = broken  # type: ignore[method-assign]
        await producer._outcomes.start()  # type: ignore[union-attr]
        with pytest.raises(ConnectionError, match="went away"):
            await producer.publish("register", REGISTER, wait=True, wait_timeout=5)
        await producer.stop()
