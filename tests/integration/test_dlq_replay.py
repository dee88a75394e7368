"""``registry dlq show|replay``: dead letters go back to their topic once, with their original headers.

``replay --api-key`` signs again only the letters that key signed; the others go back as they were.
Signing every dead letter with the operator's key would let whoever can write to a topic plant a
command that later runs as the operator.
"""

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from registry_contract import messages
from registry_contract.auth import ApiKey, generate_api_key
from registry_contract.envelope import decode
from registry_contract.record_signing import signature_matches, signing_key
from shared.chassis.kafka import ensure_topics
from tests.factories import command_event, register_data
from tests.infra import Infra, private_topics
from tests.kafka_tools import publish_raw

pytestmark = pytest.mark.integration
AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def dead_letter(topic: str, offset: int, *, token: str | None) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """A registration command (signed with ``token``, an hour ago) as the consumer dead-letters it."""
    event = command_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", "m"), token=token, time=AN_HOUR_AGO)
    value, headers = event.to_kafka()
    where = [("dlq_reason", b"handler_failed"), ("dlq_source_topic", topic.encode())]
    where += [("dlq_source_partition", b"0"), ("dlq_source_offset", str(offset).encode())]
    return value, headers + where, b"fraud/m"


async def registry(infra: Infra, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "registry_client.cli.main",
        *args,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def replayed(infra: Infra, topic: str, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        records: list[Any] = []
        while len(records) < count:
            batches = await consumer.getmany(timeout_ms=5000)
            assert batches, f"only {len(records)} of {count} records came back"
            records += [record for batch in batches.values() for record in batch]
    finally:
        await consumer.stop()
    return records


def secret_of(key: ApiKey) -> str:
    return key.token.split("_", 2)[2]


async def test_dead_letters_are_shown_and_replayed_exactly_once(infra: Infra) -> None:
    topic = f"replay-{uuid.uuid4().hex[:8]}"
    await ensure_topics(private_topics(infra, topic), partitions=1)
    key = generate_api_key()
    await publish_raw(infra.kafka_bootstrap, f"{topic}.dlq", [dead_letter(topic, 41, token=key.token)])

    shown = await registry(infra, "dlq", "show", topic)
    [line] = [json.loads(text) for text in shown.splitlines()]
    assert line["reason"] == "handler_failed" and line["source"] == f"{topic}[0]@41" and line["key"] == "fraud/m"
    assert line["ce_keyid"] == key.key_id
    dry = await registry(infra, "dlq", "replay", topic, "--dry-run", "--api-key", key.token)
    assert "would replay 1 record(s)" in dry and f"would be re-signed with the replaying key: {topic}[0]@41" in dry
    # The key that signed the letter signs it again, with a fresh ce_time: inside the window.
    assert "replayed 1 record(s)" in await registry(infra, "dlq", "replay", topic, "--api-key", key.token)
    assert "replayed 0 record(s)" in await registry(infra, "dlq", "replay", topic)

    [record] = await replayed(infra, topic, 1)
    assert record.key == b"fraud/m" and not any(name.startswith("dlq_") for name, _ in record.headers)
    event = decode(record.value, record.headers)
    assert event.proof is not None and event.proof.key_id == key.key_id
    assert signature_matches(signing_key(secret_of(key)), event.proof)
    assert event.time > AN_HOUR_AGO + timedelta(minutes=30)


async def test_a_replay_signs_again_only_what_the_replaying_key_signed(infra: Infra) -> None:
    topic = f"replay-{uuid.uuid4().hex[:8]}"
    await ensure_topics(private_topics(infra, topic), partitions=1)
    operator, other = generate_api_key(), generate_api_key()
    planted = dead_letter(topic, 2, token=other.token)  # claims the operator's key id, signed by another key
    planted_headers = [(k, operator.key_id.encode()) if k == "ce_keyid" else (k, v) for k, v in planted[1]]
    letters = [
        dead_letter(topic, 1, token=other.token),
        (planted[0], planted_headers, planted[2]),
        dead_letter(topic, 3, token=None),
    ]
    await publish_raw(infra.kafka_bootstrap, f"{topic}.dlq", letters)

    shown = [json.loads(text) for text in (await registry(infra, "dlq", "show", topic)).splitlines()]
    assert [line["ce_keyid"] for line in shown] == [other.key_id, operator.key_id, None]
    output = await registry(infra, "dlq", "replay", topic, "--api-key", operator.token)
    assert "replayed 3 record(s)" in output and "re-signed" not in output
    assert f"@1 ce_type={messages.REGISTER_MODEL_VERSION} ce_keyid={other.key_id}" in output
    assert "ce_keyid=none" in output

    # Each goes back exactly as it was written: none acts as the operator.
    records = await replayed(infra, topic, 3)
    assert [list(record.headers) for record in records] == [
        [(k, v) for k, v in headers if not k.startswith("dlq_")] for _, headers, _ in letters
    ]
