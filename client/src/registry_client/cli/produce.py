"""``registry produce``: one command or deploy report from JSON, through the client's Kafka helper."""

from __future__ import annotations

from typing import Any

from registry_client.kafka import publish_and_wait, publish_once
from registry_client.outcomes import Outcome

__all__ = ["produce_and_wait", "produce_message"]


async def produce_message(
    kind: str,
    data: dict[str, Any],
    *,
    bootstrap_servers: str,
    api_key: str | None,
    correlation_id: str | None,
    **producer_options: Any,
) -> str:
    """Publish ``data`` as a CloudEvent of ``kind``, keyed by team/name; return its ``ce_id``.

    The data is sent unchecked: the registry's refusal (``command_rejected``) says what is wrong.
    ``producer_options`` go to aiokafka (TLS: :func:`registry_client.cli.main.kafka_tls_options`).
    """
    return await publish_once(
        kind,
        data,
        bootstrap_servers=bootstrap_servers,
        api_key=api_key,
        correlation_id=correlation_id,
        source="/registry/cli",
        validate=False,
        **producer_options,
    )


async def produce_and_wait(
    kind: str,
    data: dict[str, Any],
    *,
    bootstrap_servers: str,
    api_key: str | None,
    correlation_id: str | None,
    timeout: float,
    **producer_options: Any,
) -> Outcome:
    """Publish as :func:`produce_message` does, then wait for the registry's outcome on ``registry.events``."""
    return await publish_and_wait(
        kind,
        data,
        bootstrap_servers=bootstrap_servers,
        api_key=api_key,
        correlation_id=correlation_id,
        timeout=timeout,
        source="/registry/cli",
        validate=False,
        **producer_options,
    )
