"""Shared pieces of the subscriber tests under FastStream's ``TestKafkaBroker``: no broker, no database."""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias, cast

from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker, KafkaMessage

from registry_contract import messages
from registry_contract.envelope import CloudEvent
from shared.chassis.identity import RecordIdentity
from shared.chassis.keystore_memory import InMemoryKeyStore
from shared.chassis.signing import EventSigner
from tests.factories import ADMIN_KEY, command_event

SIGNING_KEY = "k" * 64
NOT_JSON = b"{this is not json"
Record: TypeAlias = ConsumerRecord[Any, Any]


def published(record: tuple[bytes, list[tuple[str, bytes]]]) -> tuple[bytes, dict[str, str]]:
    """A record as FastStream publishes it: headers as text."""
    value, headers = record
    return value, {name: raw.decode() for name, raw in headers}


def headers_of(record: Record) -> dict[str, str]:
    return {name: bytes(raw).decode() for name, raw in record.headers}


async def _raw(_: Any) -> None:
    return None


def dead_letters(broker: KafkaBroker, topic: str) -> list[Record]:
    """Every record published to ``<topic>.dlq``, as it arrived."""
    records: list[Record] = []

    @broker.subscriber(f"{topic}.dlq", decoder=_raw)
    async def dead_lettered(_: Any, message: KafkaMessage) -> None:
        records.append(cast(Record, message.raw_message))

    return records


def report_event(team: str, *, token: str | None = None) -> CloudEvent:
    data = {"team": team, "name": f"m-{uuid.uuid4().hex[:8]}", "version": "1.0.0", "status": "deployed"}
    return command_event(messages.DEPLOY_STATUS_REPORTED, data, token=token)


def admin_keys() -> InMemoryKeyStore:
    """A key store holding :data:`ADMIN_KEY`, a platform admin that can sign."""
    keys = InMemoryKeyStore()
    keys.add(ADMIN_KEY, team="platform", scopes=frozenset({"platform:admin"}))
    return keys


def identity(keystore: InMemoryKeyStore | None = None, *, accept_bearer: bool = False) -> RecordIdentity:
    return RecordIdentity(
        keystore=keystore or admin_keys(), signer=EventSigner(SIGNING_KEY.encode()), accept_bearer=accept_bearer
    )


async def mongo_up() -> bool:
    """A database probe that always finds MongoDB up."""
    return True
