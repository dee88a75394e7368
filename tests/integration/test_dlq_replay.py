"""``registry dlq show|replay``: dead letters go back to their topic once, with their original headers."""

import asyncio
import json
import os
import sys
import uuid

import pytest
from aiokafka import AIOKafkaConsumer

from shared.chassis.kafka import ensure_topics
from shared.contract.auth import generate_api_key
from shared.contract.record_signing import canonical_string, signature, signing_key
from tests.infra import Infra, private_topics
from tests.kafka_tools import publish_raw

pytestmark = pytest.mark.integration


async def test_dead_letters_are_shown_and_replayed_exactly_once(infra: Infra) -> None:
    topic = f"replay-{uuid.uuid4().hex[:8]}"
    await ensure_topics(private_topics(infra, topic, partitions=1))
    dead_headers = [
        ("ce_type", b"registry.command.register_model_version"),
        ("dlq_reason", b"missing_attribute"),
        ("dlq_error", b"ce_id is missing"),
        ("dlq_source_topic", topic.encode()),
        ("dlq_source_partition", b"0"),
        ("dlq_source_offset", b"41"),
    ]
    await publish_raw(infra.kafka_bootstrap, f"{topic}.dlq", [(b'{"x": 1}', dead_headers, b"team/model")])

    async def registry(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "registry_cli.main",
            *args,
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
        return output.decode()

    shown = await registry("dlq", "show", topic)
    [line] = [json.loads(text) for text in shown.splitlines()]
    assert line["reason"] == "missing_attribute" and line["source"] == f"{topic}[0]@41" and line["key"] == "team/model"
    assert "would replay 1 record(s)" in await registry("dlq", "replay", topic, "--dry-run")
    # Dead letters carry no credential: the replay signs with the key it is given, never sends it.
    key = generate_api_key()
    assert "replayed 1 record(s)" in await registry("dlq", "replay", topic, "--api-key", key.token)
    assert "replayed 0 record(s)" in await registry("dlq", "replay", topic)

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    [record] = [record for records in batches.values() for record in records]
    assert record.value == b'{"x": 1}' and record.key == b"team/model"
    headers = dict(record.headers)
    assert [name for name, _ in record.headers] == ["ce_type", "ce_time", "ce_keyid", "ce_signature"]
    assert headers["ce_keyid"] == key.key_id.encode()
    secret = key.token.split("_")[2]
    canonical = canonical_string(
        key_id=key.key_id,
        event_id="",
        source="",
        event_type="registry.command.register_model_version",
        time=headers["ce_time"].decode(),
        subject=None,
        value=record.value,
    )
    assert headers["ce_signature"].decode() == signature(signing_key(secret), canonical)
