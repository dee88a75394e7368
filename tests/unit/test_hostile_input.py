"""Property tests: whatever a producer sends, decoding and validation end in a value or a typed refusal.

Every record a consumer takes must end as a CloudEvent or an :class:`EnvelopeError` (dead letter),
and every command as an outcome: accepted ones must be storable by MongoDB as they are.
"""

import contextlib
import json
import string
from typing import Any

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from registry_contract import messages
from registry_contract.envelope import CloudEvent, EnvelopeError, decode
from tests.factories import PRODUCER, register_data

pytestmark = pytest.mark.unit
BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

odd_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "\x00", "a\x00b", "$set", "a.b", "\ud7ff", "x" * 5000, "ﬀ", "\u202e", "team"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | odd_text
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4), max_leaves=30
)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def encoded(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


values = (
    st.binary(max_size=200)
    | json_values.map(encoded)
    | st.integers(min_value=1, max_value=6000).map(nested)
    | st.integers(min_value=1, max_value=6000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d)
)
header_names = st.sampled_from(
    ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type", "authorization"]
) | st.text(alphabet=string.ascii_lowercase + "_-", max_size=12)
header_values = st.binary(max_size=60) | st.sampled_from(
    [b"1.0", b"application/json", b"application/cloudevents+json", b"2026-11-26T10:00:00Z", b"9999-99-99"]
)
headers = st.lists(st.tuples(header_names, header_values), max_size=10)


@BOUNDED
@given(value=values | st.none(), record_headers=headers)
def test_decoding_any_record_gives_an_event_or_an_envelope_error(value: bytes | None, record_headers: Any) -> None:
    try:
        event = decode(value, record_headers)
    except EnvelopeError as exc:
        assert exc.reason in {"empty", "too_large", "not_json", "too_deep", "malformed"}
        return
    assert isinstance(event, CloudEvent) and isinstance(event.data, dict)
    event.to_kafka()  # and whatever decoded can be sent on again


structured_bodies = st.fixed_dictionaries(
    {"specversion": st.just("1.0") | json_values, "id": json_values, "source": json_values, "type": json_values},
    optional={"subject": json_values, "time": json_values, "correlationid": json_values, "data": json_values},
)


@BOUNDED
@given(body=structured_bodies)
def test_decoding_any_structured_event_gives_an_event_or_an_envelope_error(body: dict[str, Any]) -> None:
    with contextlib.suppress(EnvelopeError):
        decode(encoded(body), [("content-type", b"application/cloudevents+json")])


command_data = st.fixed_dictionaries(
    {},
    optional={
        "team": st.just("fraud") | odd_text,
        "name": st.just("m") | odd_text,
        "version": st.sampled_from(["1.0.0", "1.0", "01.0.0", "1.0.0-rc.1+b"]) | odd_text,
        "framework": st.just("onnx") | json_values,
        "artifact_uri": st.just("s3://bucket/key") | json_values,
        "tags": json_values,
        "metrics": json_values,
        "parameters": json_values,
        "signature": json_values,
        "description": json_values,
        "deployment_targets": json_values,
        "state": json_values,
        "with_team": json_values,
    },
)


@BOUNDED
@given(ce_type=st.sampled_from([*messages.COMMAND_TYPES, "registry.command.nope"]), data=command_data)
async def test_any_command_ends_in_one_outcome_and_what_is_stored_is_storable(ce_type: str, data: Any) -> None:
    base = register_data("fraud", "m") if ce_type == messages.REGISTER_MODEL_VERSION else {}
    event = CloudEvent(source="/hypothesis", type=ce_type, data={**base, **data})
    repo = InMemoryRepository()
    [outcome] = await handle_commands([Command(event, PRODUCER)], repo=repo, artifact_schemes=["s3"])
    assert outcome.event.causation_id == event.id
    for document in [*repo.versions.values(), *repo.models.values(), *repo.outbox.values()]:
        bson.encode(document)  # the driver would refuse it, failing the batch on every retry
