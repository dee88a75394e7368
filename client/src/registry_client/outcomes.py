"""The registry's answer to a published command or report: its outcome event on ``registry.events``.

Registration answers every command, and the deploy-tracker every report, with one event whose
``ce_causationid`` is the published ``ce_id`` (the success event, or ``command_rejected``). Its
``ce_revision`` is the model's revision after the write, so the outcome gives the same consistency
token an HTTP write answers with: ``r.<model_id>.<revision>`` from registration, ``d.…`` from the
deploy-tracker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from registry_client.consistency import ConsistencyTokens
from registry_contract import messages
from registry_contract.envelope import CloudEvent, EnvelopeError, decode
from registry_contract.ids import model_id

# Whose events make which kind of token: the ``ce_source`` of registration's and the deploy-tracker's.
OWNERS = {"/registry/registration": "r", "/registry/deploy-tracker": "d"}
# Which event of several answering one cause is the answer: a refusal, else anything but the record.
_ANSWER_RANK = {messages.COMMAND_REJECTED: 0, "registry.event.deployment_report_recorded": 2}
REMEMBERED_CAUSES = 1024  # commands whose late outcome events still add their tokens
# Options of AIOKafkaProducer that say how to reach the brokers, which the outcome consumer shares.
CONNECTION_OPTIONS = frozenset(
    {
        "client_id",
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "sasl_oauth_token_provider",
        "request_timeout_ms",
        "retry_backoff_ms",
        "metadata_max_age_ms",
        "connections_max_idle_ms",
        "api_version",
    }
)


@dataclass(frozen=True)
class Outcome:
    """What the registry did with a published command or report."""

    command_id: str  # the published ce_id
    type: str  # the outcome's ce_type (``registry.event.command_rejected`` when refused)
    source: str
    data: Mapping[str, Any] = field(repr=False)
    revision: int | None = None
    consistency_token: str | None = None  # send it back on reads (the clients do, sharing a store)

    @property
    def rejected(self) -> bool:
        """Whether the command or report was refused (``reason`` and ``data["message"]`` say why)."""
        return self.type == messages.COMMAND_REJECTED

    @property
    def reason(self) -> str | None:
        """The refusal's reason code (``duplicate_version``, ``forbidden``…), or ``None``."""
        reason = self.data.get("reason") if self.rejected else None
        return reason if isinstance(reason, str) else None


def outcome_of(event: CloudEvent) -> Outcome | None:
    """The outcome an event of ``registry.events`` is, or ``None`` when it answers nothing."""
    if not event.causation_id:
        return None
    data = event.data if isinstance(event.data, Mapping) else {}
    owner = OWNERS.get(event.source)
    model = data.get("model_id")
    if not isinstance(model, str) and isinstance(data.get("team"), str) and isinstance(data.get("name"), str):
        model = model_id(data["team"], data["name"])
    token = None
    if owner and isinstance(model, str) and event.revision is not None and event.type != messages.COMMAND_REJECTED:
        token = f"{owner}.{model}.{event.revision}"
    return Outcome(event.causation_id, event.type, event.source, data, event.revision, token)


def merged(outcomes: Sequence[Outcome]) -> Outcome:
    """One outcome of the events answering one cause, as read together.

    A deployment report is answered by its record (``deployment_report_recorded``) and by its
    status change or refusal: the answer is the refusal or the change, and the token is the
    newest revision among them, so a read with it sees both.
    """
    answer = min(outcomes, key=lambda outcome: _ANSWER_RANK.get(outcome.type, 1))
    tokened = [outcome for outcome in outcomes if outcome.consistency_token]
    if not tokened:
        return answer
    newest = max(tokened, key=lambda outcome: outcome.revision or -1)
    return replace(answer, revision=newest.revision, consistency_token=newest.consistency_token)


class OutcomeWatcher:
    """Reads ``registry.events`` from where it ended at :meth:`start`, handing outcomes to their waiters.

    No consumer group: it reads every partition itself, commits nothing, and sees only events
    published after it started, so a waiter registers (:meth:`expect`) before its command is sent.
    """

    def __init__(self, consumer: AIOKafkaConsumer, topic: str, tokens: ConsistencyTokens | None = None) -> None:
        self._consumer, self.topic, self.tokens = consumer, topic, tokens
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._ours: OrderedDict[str, None] = OrderedDict()  # causes waited for, the latest ones
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def connect(
        cls, bootstrap_servers: str, topic: str, options: Mapping[str, Any], tokens: ConsistencyTokens | None = None
    ) -> OutcomeWatcher:
        """A watcher over a consumer with the producer's connection options; outcome tokens go to ``tokens``."""
        shared = {name: value for name, value in options.items() if name in CONNECTION_OPTIONS}
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **shared)
        return cls(consumer, topic, tokens)

    @property
    def started(self) -> bool:
        """Whether it is reading."""
        return self._task is not None

    async def start(self) -> None:
        """Connect and take every partition's end as the start: what comes after is an answer to wait for."""
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic)
        if not partitions:
            await self._consumer.topics()  # fetches the metadata the first look did not have yet
            partitions = self._consumer.partitions_for_topic(self.topic)
        if not partitions:
            await self._consumer.stop()
            raise RuntimeError(f"topic {self.topic!r} has no partitions: is the registry running?")
        assigned = [TopicPartition(self.topic, partition) for partition in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for partition in assigned:
            await self._consumer.position(partition)  # resolved now, before any command leaves
        self._task = asyncio.create_task(self._read(), name="registry-outcomes")

    async def stop(self) -> None:
        """Stop reading; whoever still waits gets ``asyncio.CancelledError``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # a failure already went to its waiters
                await self._task
            self._task = None
        for waiter in self._waiting.values():
            waiter.cancel()
        self._waiting.clear()
        await self._consumer.stop()

    def expect(self, command_id: str) -> asyncio.Future[Outcome]:
        """The future outcome of ``command_id`` (register before sending the command)."""
        self._ours[command_id] = None
        self._ours.move_to_end(command_id)
        while len(self._ours) > REMEMBERED_CAUSES:
            self._ours.popitem(last=False)
        waiter = self._waiting.get(command_id)
        if waiter is None:
            waiter = self._waiting[command_id] = asyncio.get_running_loop().create_future()
        return waiter

    async def wait(self, command_id: str, timeout: float) -> Outcome:
        """The outcome of ``command_id``; ``TimeoutError`` after ``timeout`` seconds."""
        waiter = self.expect(command_id)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        finally:
            if self._waiting.get(command_id) is waiter and not waiter.done():
                waiter.cancel()
            self._waiting.pop(command_id, None)

    async def _read(self) -> None:
        try:
            await self._follow()
        except Exception as failure:  # whoever waits learns why rather than timing out
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(failure)
            raise

    async def _follow(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            found: dict[str, list[Outcome]] = {}
            for records in batches.values():
                for record in records:
                    outcome = _outcome(record.value, record.headers)
                    if outcome is None or outcome.command_id not in self._ours:
                        continue
                    if outcome.consistency_token and self.tokens is not None:
                        self.tokens.remember(outcome.consistency_token)  # a sibling arriving late counts too
                    found.setdefault(outcome.command_id, []).append(outcome)
            for command_id, outcomes in found.items():
                waiter = self._waiting.get(command_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(merged(outcomes))


def _outcome(value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> Outcome | None:
    try:
        return outcome_of(decode(value, headers))
    except EnvelopeError:
        return None
