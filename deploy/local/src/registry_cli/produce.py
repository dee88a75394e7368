"""Publishing a command or deploy report from JSON: one line in a pipeline step."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from shared.chassis.settings import CommonSettings
from shared.contract import messages
from shared.contract.envelope import CloudEvent

_TOPICS = CommonSettings()
KINDS: dict[str, tuple[str, str]] = {
    "register": (messages.REGISTER_MODEL_VERSION, _TOPICS.topic_commands),
    "update": (messages.UPDATE_MODEL_VERSION, _TOPICS.topic_commands),
    "lifecycle": (messages.SET_VERSION_LIFECYCLE, _TOPICS.topic_commands),
    "share": (messages.SHARE_MODEL, _TOPICS.topic_commands),
    "unshare": (messages.UNSHARE_MODEL, _TOPICS.topic_commands),
    "deploy": (messages.DEPLOY_STATUS_REPORTED, _TOPICS.topic_deploy),
}


async def produce_message(
    kind: str,
    data: dict[str, Any],
    *,
    bootstrap_servers: str,
    api_key: str | None,
    correlation_id: str | None,
) -> str:
    """Publish ``data`` as a CloudEvent of ``kind``, keyed by team/name; return its ``ce_id``."""
    ce_type, topic = KINDS[kind]
    team, name = str(data.get("team", "")), str(data.get("name", ""))
    event = CloudEvent(
        source="/registry/cli",
        type=ce_type,
        subject=f"{team}/{name}",
        authorization=f"Bearer {api_key}" if api_key else None,
        data=data,
        **({"correlation_id": correlation_id} if correlation_id else {}),
    )
    value, headers = event.to_kafka()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=f"{team}/{name}".encode(), headers=headers)
    finally:
        await producer.stop()
    return event.id
