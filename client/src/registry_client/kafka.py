"""Publishing commands and deployment reports to Kafka as the registry expects them, for pipelines.

A CloudEvent in binary mode (``ce_*`` headers, the data as JSON value), keyed ``<team>/<name>`` so
every message about one model stays in order, signed with the API key (``ce_keyid`` and
``ce_signature``, :mod:`registry_contract.record_signing`): the key itself never travels. The
outcome (the success event or ``command_rejected``, whose ``ce_causationid`` is the returned id)
appears on ``registry.events``; ``publish(..., wait=True)`` waits for it and returns it, with the
consistency token that makes a later read see the write (:mod:`registry_client.outcomes`). Over
HTTP the same writes answer at once (:class:`RegistryClient`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, Self, overload

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from registry_client.consistency import ConsistencyTokens
from registry_client.kinds import KINDS
from registry_client.outcomes import Outcome, OutcomeWatcher
from registry_contract import messages
from registry_contract.envelope import CloudEvent

DATA_MODELS: dict[str, type[BaseModel]] = {
    **messages.COMMAND_MODELS,
    messages.DEPLOY_STATUS_REPORTED: messages.DeploymentStatusReported,
}
DEFAULT_SOURCE = "/registry/client"


def event_type(kind: str) -> str:
    """The ``ce_type`` of a short name (``register``) or of a ``ce_type`` itself; ``ValueError`` if neither."""
    ce_type = KINDS.get(kind, kind)
    if ce_type not in DATA_MODELS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)} or a command's ce_type")
    return ce_type


def registry_event(
    kind: str,
    data: Mapping[str, Any] | BaseModel,
    *,
    api_key: str | None,
    source: str = DEFAULT_SOURCE,
    correlation_id: str | None = None,
    event_id: str | None = None,
    validate: bool = True,
) -> CloudEvent:
    """The CloudEvent of a command or report; with ``validate``, its data is checked first.

    An invalid one raises ``pydantic.ValidationError``. The data goes out as given (a model as its
    JSON, unset fields left out): the registry validates it again and refuses with ``command_rejected``.
    With ``api_key``, the event is signed with it when encoded (:meth:`CloudEvent.to_kafka`).
    """
    ce_type = event_type(kind)
    payload = data.model_dump(mode="json", exclude_unset=True) if isinstance(data, BaseModel) else dict(data)
    if validate:
        DATA_MODELS[ce_type].model_validate(payload)
    team, name = str(payload.get("team", "")), str(payload.get("name", ""))
    attributes: dict[str, Any] = {"correlation_id": correlation_id} if correlation_id else {}
    if event_id:
        attributes["id"] = event_id
    return CloudEvent(
        source=source,
        type=ce_type,
        subject=f"{team}/{name}",
        sign_with=api_key or None,
        data=payload,
        **attributes,
    )


class RegistryProducer:
    """A Kafka producer of registry commands and deployment reports (``async with``, or ``start``/``stop``).

    Args:
        bootstrap_servers: the brokers (default ``KAFKA_BOOTSTRAP_SERVERS``, else ``127.0.0.1:9092``).
        api_key: the key commands act with, which signs each record (default ``REGISTRY_API_KEY``).
        source: the ``ce_source`` naming this producer.
        commands_topic, deploy_topic: default ``TOPIC_COMMANDS``/``TOPIC_DEPLOY``, else the contract's names.
        validate: check each message's data against the contract before sending it.
        events_topic: where outcomes appear (default ``TOPIC_EVENTS``, else ``registry.events``).
        consistency: where the tokens of waited-for outcomes are kept; pass an HTTP client's
            ``client.consistency`` so its reads see what this producer wrote.
        producer_options: passed to ``AIOKafkaProducer`` (``security_protocol``, ``sasl_mechanism``…);
            the connection ones (TLS, SASL) also to the consumer of outcomes.

    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        api_key: str | None = None,
        source: str = DEFAULT_SOURCE,
        commands_topic: str | None = None,
        deploy_topic: str | None = None,
        validate: bool = True,
        events_topic: str | None = None,
        consistency: ConsistencyTokens | None = None,
        **producer_options: Any,
    ) -> None:
        self.api_key = api_key or os.environ.get("REGISTRY_API_KEY") or None
        self.source, self.validate = source, validate
        self.commands_topic = commands_topic or os.environ.get("TOPIC_COMMANDS") or "registry.commands"
        self.deploy_topic = deploy_topic or os.environ.get("TOPIC_DEPLOY") or "deploy.events"
        self.events_topic = events_topic or os.environ.get("TOPIC_EVENTS") or "registry.events"
        self.consistency = consistency if consistency is not None else ConsistencyTokens()
        servers = bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092"
        self._producer = AIOKafkaProducer(bootstrap_servers=servers, **{"acks": "all", **producer_options})
        self._servers, self._options = servers, producer_options
        self._outcomes: OutcomeWatcher | None = None  # connected at the first publish that waits
        self._connecting = asyncio.Lock()

    async def start(self) -> None:
        """Connect to the brokers."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        try:
            await self._producer.stop()
        finally:
            if self._outcomes is not None:
                outcomes, self._outcomes = self._outcomes, None
                await outcomes.stop()

    async def _watching(self) -> OutcomeWatcher:
        async with self._connecting:
            if self._outcomes is None:
                watcher = OutcomeWatcher.connect(self._servers, self.events_topic, self._options, self.consistency)
                await watcher.start()
                self._outcomes = watcher
            return self._outcomes

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @overload
    async def publish(
        self,
        kind: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        correlation_id: str | None = None,
        event_id: str | None = None,
        wait: Literal[False] = False,
        wait_timeout: float = 30.0,
    ) -> str: ...
    @overload
    async def publish(
        self,
        kind: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        correlation_id: str | None = None,
        event_id: str | None = None,
        wait: Literal[True],
        wait_timeout: float = 30.0,
    ) -> Outcome: ...
    async def publish(
        self,
        kind: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        correlation_id: str | None = None,
        event_id: str | None = None,
        wait: bool = False,
        wait_timeout: float = 30.0,
    ) -> str | Outcome:
        """Publish a command or report (``kind``: a short name of :data:`KINDS` or a ``ce_type``); return its ``ce_id``.

        Sending again with the same ``event_id`` changes nothing more: the registry applies a
        command once per id (within the key's team). With ``wait``, return its :class:`Outcome`
        instead (``TimeoutError`` after ``wait_timeout`` seconds): the success event or the
        refusal, whose consistency token is kept in :attr:`consistency`.
        """
        event = registry_event(
            kind,
            data,
            api_key=self.api_key,
            source=self.source,
            correlation_id=correlation_id,
            event_id=event_id,
            validate=self.validate,
        )
        topic = self.deploy_topic if event.type == messages.DEPLOY_STATUS_REPORTED else self.commands_topic
        value, headers = event.to_kafka()
        key = (event.subject or "").encode()
        if not wait:
            await self._producer.send_and_wait(topic, value, key=key, headers=headers)
            return event.id
        outcomes = await self._watching()
        outcomes.expect(event.id)  # before sending: its answer may come at once
        await self._producer.send_and_wait(topic, value, key=key, headers=headers)
        outcome = await outcomes.wait(event.id, wait_timeout)
        if outcome.consistency_token:
            self.consistency.remember(outcome.consistency_token)
        return outcome


async def publish_once(
    kind: str,
    data: Mapping[str, Any] | BaseModel,
    *,
    bootstrap_servers: str | None = None,
    api_key: str | None = None,
    correlation_id: str | None = None,
    **options: Any,
) -> str:
    """Connect, publish one command or report, disconnect; return its ``ce_id`` (a pipeline step's one call)."""
    async with RegistryProducer(bootstrap_servers, api_key=api_key, **options) as producer:
        return await producer.publish(kind, data, correlation_id=correlation_id)


async def publish_and_wait(
    kind: str,
    data: Mapping[str, Any] | BaseModel,
    *,
    bootstrap_servers: str | None = None,
    api_key: str | None = None,
    correlation_id: str | None = None,
    timeout: float = 30.0,
    **options: Any,
) -> Outcome:
    """Connect, publish one command or report, wait for its outcome, disconnect; return the outcome."""
    async with RegistryProducer(bootstrap_servers, api_key=api_key, **options) as producer:
        return await producer.publish(kind, data, correlation_id=correlation_id, wait=True, wait_timeout=timeout)
