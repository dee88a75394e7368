"""The one way a service puts an event on Kafka: binary mode, signed as the service, keyed."""

from __future__ import annotations

import asyncio

from aiokafka.structs import RecordMetadata
from faststream.kafka import KafkaBroker

from registry_contract.envelope import CloudEvent
from shared.chassis.signing import EventSigner


async def publish_event(
    broker: KafkaBroker, signer: EventSigner, event: CloudEvent, *, topic: str, key: str, acting_for: str | None = None
) -> asyncio.Future[RecordMetadata]:
    """Hand ``event`` to the producer; await the returned future for the broker's acknowledgement.

    Returning the future lets a caller send a batch and then wait for all acknowledgements at once.
    ``acting_for`` is the key id of the caller the service publishes for (``ce_principal``).
    """
    value, headers = signer.encode(event, acting_for=acting_for)
    return await broker.publish(value, topic=topic, key=key.encode(), headers=headers, no_confirm=True)
