"""The client's Kafka helper: every command type and the deployment report, in the contract's envelope."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from registry_client.kafka import RegistryProducer, event_type, registry_event
from registry_client.kinds import KINDS
from registry_contract import messages
from registry_contract.auth import generate_api_key
from registry_contract.envelope import decode
from registry_contract.record_signing import NotAKey, signature_matches, signing_key

pytestmark = pytest.mark.unit
KEY = generate_api_key()
REGISTER = {"team": "fraud", "name": "card", "version": "1.4.0", "framework": "xgboost", "artifact_uri": "s3://b/k"}


class SentRecords:
    """Stands in for ``AIOKafkaProducer``: keeps what would have been sent."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.records.append({"topic": topic, "value": value, "key": key, "headers": headers})


def test_every_command_type_and_the_deployment_report_has_a_kind() -> None:
    assert set(KINDS.values()) == set(messages.COMMAND_MODELS) | {messages.DEPLOY_STATUS_REPORTED}
    assert event_type("register") == event_type(messages.REGISTER_MODEL_VERSION) == messages.REGISTER_MODEL_VERSION
    with pytest.raises(ValueError, match="unknown kind"):
        event_type("registry.event.model_version_registered")  # an event is not something producers send


def test_a_command_is_a_binary_mode_cloudevent_signed_with_the_key_which_is_never_sent() -> None:
    event = registry_event("register", REGISTER, api_key=KEY.token, correlation_id="build-8812")
    value, headers = event.to_kafka()
    decoded = decode(value, headers)
    assert dict(headers)["ce_specversion"] == b"1.0" and dict(headers)["content-type"] == b"application/json"
    assert (decoded.type, decoded.subject, decoded.correlation_id) == (
        messages.REGISTER_MODEL_VERSION,
        "fraud/card",
        "build-8812",
    )
    assert decoded.authorization is None and json.loads(value) == REGISTER
    assert decoded.proof is not None and decoded.proof.key_id == KEY.key_id
    assert signature_matches(signing_key(KEY.token.split("_")[2]), decoded.proof)
    assert not any(KEY.token.split("_")[2].encode() in raw for _, raw in headers)  # the secret stays home


def test_a_producer_given_something_else_than_a_key_refuses_to_send() -> None:
    with pytest.raises(NotAKey):
        registry_event("register", REGISTER, api_key="not-a-key").to_kafka()


def test_data_is_checked_against_the_contract_unless_told_not_to() -> None:
    broken = {**REGISTER, "version": "not-semver"}
    with pytest.raises(ValidationError):
        registry_event("register", broken, api_key=None)
    assert registry_event("register", broken, api_key=None, validate=False).data == broken


def test_a_contract_model_is_sent_as_its_json() -> None:
    report = messages.DeploymentStatusReported(
        team="fraud",
        name="card",
        version="1.4.0",
        environment="prod",
        status="deployed",
        occurred_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
    )
    event = registry_event("deploy", report, api_key=None)
    assert event.data["occurred_at"] == "2026-11-26T10:00:00Z" and "target" not in event.data


async def test_commands_and_reports_go_to_their_topics_keyed_by_model() -> None:
    producer = RegistryProducer("127.0.0.1:1", api_key=KEY.token, commands_topic="cmds", deploy_topic="deploys")
    sent = SentRecords()
    producer._producer = sent
    alias = {"team": "fraud", "name": "card", "version": "1.4.0", "alias": "champion"}
    report = {**REGISTER, "environment": "prod", "status": "deploying", "occurred_at": "2026-11-26T10:00:00Z"}
    report.pop("framework"), report.pop("artifact_uri")
    first = await producer.publish("alias", alias, event_id="build-1")
    await producer.publish(messages.DEPLOY_STATUS_REPORTED, report)
    assert first == "build-1"
    assert [(r["topic"], r["key"]) for r in sent.records] == [("cmds", b"fraud/card"), ("deploys", b"fraud/card")]
    assert dict(sent.records[0]["headers"])["ce_type"] == messages.SET_ALIAS.encode()
    assert all(dict(r["headers"])["ce_keyid"] == KEY.key_id.encode() for r in sent.records)
    assert all("authorization" not in dict(r["headers"]) for r in sent.records)
