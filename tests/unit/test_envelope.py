import json

import pytest

from registry_contract import envelope
from registry_contract.envelope import MAX_PAYLOAD_BYTES, CloudEvent, EnvelopeError, decode

pytestmark = pytest.mark.unit


def structured(**attributes: object) -> bytes:
    body = {"specversion": "1.0", "id": "s1", "source": "/s", "type": "t", "data": {}, **attributes}
    return json.dumps(body).encode()


def binary_headers(**overrides: str) -> list[tuple[str, bytes]]:
    headers = {
        "ce_specversion": "1.0",
        "ce_id": "id-1",
        "ce_source": "/test",
        "ce_type": "registry.command.register_model_version",
        "ce_time": "2026-11-26T10:00:00Z",
        "content-type": "application/json",
    }
    headers.update(overrides)
    return [(k, v.encode()) for k, v in headers.items() if v]


class TestBinaryMode:
    def test_round_trips_every_attribute(self) -> None:
        event = CloudEvent(
            source="/s", type="t", subject="fraud/m", correlation_id="c1", causation_id="x", data={"a": 1}
        )
        value, headers = event.to_kafka()
        decoded = decode(value, headers)
        assert decoded.model_dump() == event.model_dump()

    def test_makes_a_correlation_id_when_the_producer_sent_none(self) -> None:
        decoded = decode(b"{}", binary_headers())
        assert decoded.correlation_id

    def test_keeps_the_authorization_header(self) -> None:
        decoded = decode(b"{}", [*binary_headers(), ("authorization", b"Bearer mr_x")])
        assert decoded.authorization == "Bearer mr_x"


class TestStructuredMode:
    def test_reads_attributes_from_the_json_object(self) -> None:
        body = {"specversion": "1.0", "id": "s1", "source": "/s", "type": "t", "correlationid": "c", "data": {"k": 1}}
        decoded = decode(json.dumps(body).encode(), [("content-type", b"application/cloudevents+json")])
        assert (decoded.id, decoded.correlation_id, decoded.data) == ("s1", "c", {"k": 1})


class TestCredentials:
    def test_a_credential_inside_a_structured_event_is_refused(self) -> None:
        body = json.loads(structured(authorization="Bearer mr_abcdefgh_secret"))
        with pytest.raises(EnvelopeError, match="authorization header"):
            decode(json.dumps(body).encode(), [("content-type", b"application/cloudevents+json")])

    def test_a_correlation_id_that_is_not_a_short_token_is_replaced(self) -> None:
        decoded = decode(b"{}", binary_headers(ce_correlationid="x" * 500))
        assert decoded.correlation_id != "x" * 500


class TestMalformed:
    @pytest.mark.parametrize(
        ("value", "headers", "reason"),
        [
            (None, binary_headers(), "empty"),
            (b"\xff\xfe", binary_headers(), "not_json"),
            (b"not json", binary_headers(), "not_json"),
            (b"[]", binary_headers(), "malformed"),
            (b"{}", binary_headers(ce_specversion="0.3"), "malformed"),
            (b"{}", binary_headers(ce_id=""), "malformed"),
            (b"{}", binary_headers(ce_time="yesterday"), "malformed"),
            (b"{}", [("content-type", b"application/cloudevents+json")], "malformed"),
            (b"x" * (MAX_PAYLOAD_BYTES + 1), binary_headers(), "too_large"),
            # Decoded naively these raise RecursionError or pydantic's ValidationError, which no consumer catches.
            (b"[" * 5000, binary_headers(), "too_deep"),
            (b'{"a":' * 80 + b"1" + b"}" * 80, binary_headers(), "too_deep"),
            (b'{"a":' * 65 + b"1" + b"}" * 65, binary_headers(), "too_deep"),  # one level past the limit
            (structured(subject=5), [("content-type", b"application/cloudevents+json")], "malformed"),
            (structured(id=["x"]), [("content-type", b"application/cloudevents+json")], "malformed"),
            (structured(time="2026-13-45T99:00:00Z"), [("content-type", b"application/cloudevents+json")], "malformed"),
            (b'{"auc": NaN}', binary_headers(), "not_json"),
            (b"{}", [*binary_headers(), ("ce_id", b"id-2")], "malformed"),
            (b"{}", binary_headers(ce_id="a\nb"), "malformed"),
        ],
    )
    def test_names_the_reason(self, value: bytes | None, headers: list[tuple[str, bytes]], reason: str) -> None:
        with pytest.raises(EnvelopeError) as caught:
            decode(value, headers)
        assert caught.value.reason == reason


def test_an_event_with_few_brackets_is_not_walked_for_its_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its count of opening brackets bounds its depth: the walk would be a second pass for nothing."""

    def walked(*_: object, **__: object) -> int:
        raise AssertionError("walked")

    monkeypatch.setattr(envelope, "depth_of", walked)
    assert decode(json.dumps({"a": {"b": [1, 2]}}).encode(), binary_headers()).data["a"] == {"b": [1, 2]}
    with pytest.raises(AssertionError, match="walked"):
        decode(b'{"a":' * 65 + b"1" + b"}" * 65, binary_headers())


def test_depth_is_judged_by_the_nesting_not_by_brackets_inside_strings() -> None:
    """Only a value with more opening brackets than levels allowed is walked; brackets in text are not levels."""
    bracketed = json.dumps({"notes": "[{" * 200, "a": {"b": [1, 2]}}).encode()
    assert decode(bracketed, binary_headers()).data["a"] == {"b": [1, 2]}
    at_the_limit = b'{"a":' * 64 + b"1" + b"}" * 64
    assert decode(at_the_limit, binary_headers()).data is not None


class TestEventSchemas:
    async def test_every_event_the_handlers_emit_matches_its_schema(self) -> None:
        from registration.handlers import Command, handle_commands
        from registration.repository import InMemoryRepository
        from registry_contract import messages
        from tests.factories import PRODUCER, command_event, register_event

        repo = InMemoryRepository()
        ref = {"team": "fraud", "name": "card", "version": "1.0.0"}
        events = [
            register_event("fraud", "card"),
            register_event("fraud", "card"),
            command_event(messages.UPDATE_MODEL_VERSION, {**ref, "tags": {"a": "b"}}),
            command_event(messages.SET_VERSION_LIFECYCLE, {**ref, "state": "deprecated"}),
        ]
        outcomes = await handle_commands([Command(e, PRODUCER) for e in events], repo=repo, artifact_schemes=["s3"])
        assert {o.event.type for o in outcomes} == {
            messages.MODEL_VERSION_REGISTERED,
            messages.COMMAND_REJECTED,
            messages.MODEL_VERSION_UPDATED,
            messages.VERSION_LIFECYCLE_CHANGED,
        }
        for outcome in outcomes:
            messages.EVENT_MODELS[outcome.event.type].model_validate(outcome.event.data)


def test_records_decoded_apart_share_their_key_strings_and_short_values() -> None:
    # A service that keeps events (the query's read model) would otherwise hold each name once per record.
    def received(version: str) -> CloudEvent:
        data = {"team": "fraud", "version": version, "tags": {"owner": "alice"}, "artifact_uri": "s3://b/" + "x" * 60}
        value, headers = CloudEvent(source="/t", type="t", data=data).to_kafka()
        return decode(bytes(bytearray(value)), headers)  # a fresh buffer, as each Kafka record is

    first, second = received("1.0.0"), received("2.0.0")
    keys = {key: key for key in first.data}
    assert all(keys[key] is key for key in second.data)
    tag = next(iter(first.data["tags"]))
    assert next(iter(second.data["tags"])) is tag and second.data["tags"]["owner"] is first.data["tags"]["owner"]
    assert second.data["team"] is first.data["team"]
    assert second.data["artifact_uri"] is not first.data["artifact_uri"]  # long values are left as they are
