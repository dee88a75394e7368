"""The ``revision`` extension attribute: the owner's outbox position, carried as ``ce_revision``."""

import json
from datetime import UTC, datetime

import pytest

from registry_contract.envelope import CloudEvent, EnvelopeError, decode
from shared.chassis.signing import EventSigner
from shared.outbox.rows import event_from_outbox, outbox_row

pytestmark = pytest.mark.unit

STRUCTURED = [("content-type", b"application/cloudevents+json")]
POSITION = 1_764_975_600_123_456_789


def binary_headers(**overrides: str) -> list[tuple[str, bytes]]:
    headers = {
        "ce_specversion": "1.0",
        "ce_id": "id-1",
        "ce_source": "/registry/registration",
        "ce_type": "registry.event.model_version_registered",
        "ce_time": "2026-12-05T10:00:00Z",
        "content-type": "application/json",
        **overrides,
    }
    return [(name, value.encode()) for name, value in headers.items()]


def structured(**attributes: object) -> bytes:
    body = {"specversion": "1.0", "id": "s1", "source": "/s", "type": "t", "data": {}, **attributes}
    return json.dumps(body).encode()


class TestEncoding:
    def test_binary_mode_carries_it_as_ce_revision_and_round_trips(self) -> None:
        event = CloudEvent(source="/s", type="t", revision=POSITION, data={"a": 1})
        value, headers = event.to_kafka()
        assert dict(headers)["ce_revision"] == b"%d" % POSITION
        assert decode(value, headers).revision == POSITION

    def test_structured_mode_carries_it_as_revision_and_round_trips(self) -> None:
        event = CloudEvent(source="/s", type="t", revision=POSITION)
        body = event.to_structured()
        assert body["revision"] == str(POSITION)
        assert decode(json.dumps(body).encode(), STRUCTURED).revision == POSITION

    def test_an_event_without_one_sends_no_attribute(self) -> None:
        event = CloudEvent(source="/s", type="t")
        assert "ce_revision" not in dict(event.to_kafka()[1])
        assert "revision" not in event.to_structured()
        assert decode(*event.to_kafka()).revision is None

    def test_the_service_signature_covers_it(self) -> None:
        signer = EventSigner(b"k" * 32)
        value, headers = signer.encode(CloudEvent(source="/s", type="t", revision=5))
        pairs = [(name, raw.encode()) for name, raw in headers.items()]
        assert signer.verify(value, pairs)
        forged = [(name, b"6" if name == "ce_revision" else raw) for name, raw in pairs]
        assert not signer.verify(value, forged)


class TestHostileValues:
    @pytest.mark.parametrize(
        "revision",
        [
            "",
            "-1",
            "+1",
            "1.5",
            "1e9",
            "0x10",
            " 12",
            "12 ",
            "12\n",
            "\uff11\uff12",  # fullwidth digits: str.isdigit() says yes, the attribute says no
            "²",
            "1" * 21,
            "9" * 400,
            "1_000",
        ],
    )
    def test_a_binary_revision_that_is_not_1_to_20_decimal_digits_is_malformed(self, revision: str) -> None:
        with pytest.raises(EnvelopeError) as caught:
            decode(b"{}", binary_headers(ce_revision=revision))
        assert caught.value.reason == "malformed"

    @pytest.mark.parametrize("revision", [5, -1, 1.5, True, None, ["1"], {"n": 1}, "1" * 21, "x"])
    def test_a_structured_revision_that_is_not_a_digit_string_is_malformed(self, revision: object) -> None:
        if revision is None:  # JSON null: as good as absent
            assert decode(structured(revision=None), STRUCTURED).revision is None
            return
        with pytest.raises(EnvelopeError) as caught:
            decode(structured(revision=revision), STRUCTURED)
        assert caught.value.reason == "malformed"

    def test_a_repeated_ce_revision_is_malformed(self) -> None:
        with pytest.raises(EnvelopeError):
            decode(b"{}", [*binary_headers(ce_revision="1"), ("ce_revision", b"2")])

    def test_twenty_digits_and_leading_zeros_are_accepted(self) -> None:
        assert decode(b"{}", binary_headers(ce_revision="9" * 20)).revision == int("9" * 20)
        assert decode(b"{}", binary_headers(ce_revision="007")).revision == 7


class TestOutboxRows:
    def test_the_relay_publishes_a_row_with_its_position_as_revision(self) -> None:
        event = CloudEvent(source="/s", type="t", time=datetime(2026, 12, 5, tzinfo=UTC), data={"k": 1})
        row = outbox_row(event, key="fraud/card", team="fraud", model_id="mdl_x") | {"position": POSITION}
        published = event_from_outbox(row)
        assert published.revision == POSITION
        assert published.model_dump(exclude={"revision"}) == event.model_dump(exclude={"revision"})

    def test_a_row_not_yet_numbered_has_no_revision(self) -> None:
        row = outbox_row(CloudEvent(source="/s", type="t"), key="k", team=None, model_id=None)
        assert event_from_outbox(row).revision is None
