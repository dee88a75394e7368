"""FastStream Kafka broker factory, topic creation and dead-lettering."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from prometheus_client import Counter

from registry_contract.envelope import CloudEvent, EnvelopeError, decode
from registry_contract.times import utc_text
from shared.chassis.kafka_security import broker_security, client_security_options
from shared.chassis.settings import CommonSettings

log = structlog.get_logger(__name__)
# Records a task that reads the consumer itself takes per call: aiokafka builds the records it hands
# over inside the call, on the event loop, in one go (1,000 at once held requests back 20-250 ms).
TAKE_RECORDS = 100
DEAD_LETTERS = Counter("registry_dlq_messages_total", "Records sent to a dead-letter topic", ["topic", "reason"])


def make_broker(settings: CommonSettings, **options: Any) -> KafkaBroker:
    """A broker that publishes with ``acks=all`` and, where supported, the idempotent producer."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        security=broker_security(settings),
        linger_ms=options.pop("linger_ms", 2),
        # FastStream's own "faststream" logger has a colourised stdout handler and does not
        # propagate; a plain child of the root logger goes through the service's JSON logging.
        logger=logging.getLogger("registry.kafka"),
        **options,
    )


def client_options(settings: CommonSettings) -> dict[str, Any]:
    """Endpoint and security options of plain aiokafka clients, the same as the broker's."""
    return {"bootstrap_servers": settings.kafka_bootstrap_servers, **client_security_options(settings)}


def admin_client(settings: CommonSettings) -> AIOKafkaAdminClient:
    """An admin client with the same endpoint and security settings as the broker."""
    return AIOKafkaAdminClient(client_id=f"{settings.service_name}-admin", **client_options(settings))


def offsets_consumer(settings: CommonSettings) -> AIOKafkaConsumer:
    """A consumer outside any group, used only to read partitions' first and end offsets."""
    return AIOKafkaConsumer(
        client_id=f"{settings.service_name}-offsets", enable_auto_commit=False, **client_options(settings)
    )


APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


async def ensure_topics(
    settings: CommonSettings, *, partitions: int, replication_factor: int = 1, with_dlq: bool = True
) -> list[str]:
    """Create the contract's topics (and their ``.dlq``) that do not exist yet; return all names.

    Topics are made once per deployment, by the init job and ``registry up`` (their own settings
    say how many partitions and copies), never by the services.
    """
    names = settings.all_topics()
    if with_dlq:
        names += [f"{name}.dlq" for name in names]
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        # Producers' signed records are judged by when the broker took them (shared.chassis.identity),
        # so a consumer catching up after an outage does not refuse its backlog as out of window.
        signed = {settings.topic_commands, settings.topic_deploy}
        missing = [
            NewTopic(
                name,
                partitions,
                replication_factor,
                topic_configs=APPEND_TIME if name in signed else {},
            )
            for name in names
            if name not in existing
        ]
        if missing:
            # Another process may create them first; the goal is met either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
    return names


# Never copied to a dead-letter topic: whoever reads it would collect producers' keys.
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})


def dead_letter_headers(record: ConsumerRecord[Any, Any], reason: str, error: str) -> list[tuple[str, bytes]]:
    """The original headers (credentials dropped) plus where the record came from and why it was refused."""
    return [
        *[(key, value) for key, value in (record.headers or ()) if key.lower() not in _CREDENTIAL_HEADERS],
        ("dlq_reason", reason.encode()),
        ("dlq_error", error[:1000].encode("utf-8", "replace")),
        ("dlq_source_topic", record.topic.encode()),
        ("dlq_source_partition", str(record.partition).encode()),
        ("dlq_source_offset", str(record.offset).encode()),
        ("dlq_failed_at", utc_text(datetime.now(UTC)).encode()),
    ]


async def ping(broker: KafkaBroker) -> None:
    """Readiness check: raise unless the broker answers a metadata request quickly."""
    if not await broker.ping(timeout=1.5):
        raise ConnectionError("Kafka broker did not answer")


async def dead_letter(broker: KafkaBroker, record: ConsumerRecord[Any, Any], *, reason: str, error: str) -> None:
    """Send ``record``'s original bytes to ``<topic>.dlq`` with why it was refused, so the partition moves on."""
    headers = {key: value.decode("utf-8", "replace") for key, value in dead_letter_headers(record, reason, error)}
    await broker.publish(record.value or b"", topic=f"{record.topic}.dlq", key=record.key, headers=headers)


Undecodable = list[tuple[ConsumerRecord[Any, Any], EnvelopeError]]


def decode_records(
    records: Iterable[ConsumerRecord[Any, Any]],
) -> tuple[list[tuple[ConsumerRecord[Any, Any], CloudEvent]], Undecodable]:
    """Each record's CloudEvent, in order, and apart the records that are none, with why.

    The undecodable go to :func:`dead_letter_undecodable` once the batch's own work has succeeded:
    a batch retried (a dependency away while its keys were checked or its writes made) would
    otherwise dead-letter them again on every attempt.
    """
    events, undecodable = [], []
    for record in records:
        try:
            events.append((record, decode(record.value, record.headers or ())))
        except EnvelopeError as exc:
            undecodable.append((record, exc))
    return events, undecodable


async def dead_letter_undecodable(broker: KafkaBroker, undecodable: Undecodable) -> None:
    """Send each undecodable record to ``<topic>.dlq`` (counted, logged), so the partition moves on."""
    for record, exc in undecodable:
        await dead_letter(broker, record, reason=exc.reason, error=str(exc))
        DEAD_LETTERS.labels(record.topic, exc.reason).inc()
        log.warning(
            "dead-lettered a record",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=exc.reason,
        )
