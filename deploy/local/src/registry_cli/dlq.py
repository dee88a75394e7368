"""``registry dlq show|replay``: inspect dead-lettered records and send them back to their topic.

A record lands in ``<topic>.dlq`` with its original bytes, key and headers (but never its
``authorization`` header: whoever reads the DLQ must not collect producers' keys) plus ``dlq_*``
headers saying where it came from and why. Commands and deployment reports act with a key, so
``replay --api-key`` signs again, with that key, the letters that key signed (their ``ce_keyid`` is
its id and their original signature verifies under it; a record in binary mode gets a fresh
``ce_time``, so the signature is inside its window). Every other letter is sent back with its
original headers: whoever wrote it, it never acts as the replaying operator, and its old signature
may by then be outside the window (it is refused, naming why). ``show`` and each replay line name
the ``ce_keyid`` a letter claims.
Replaying republishes the original (without the ``dlq_*`` headers) to its source topic, under
a consumer group, so each dead letter is replayed once however often the command runs. Replay
after fixing what refused it: a record that still cannot be decoded comes back to the DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from registry_cli.config import StackSettings
from registry_cli.stack_tls import kafka_client_options
from registry_contract.auth import parse_api_key
from registry_contract.envelope import STRUCTURED, EnvelopeError, decode
from registry_contract.record_signing import (
    KEYID_HEADER,
    SIGNATURE_HEADER,
    NotAKey,
    signature_headers,
    signature_matches,
    signing_key,
)
from registry_contract.times import utc_text

dlq_app = typer.Typer(help="Dead-letter topics: show and replay.", no_args_is_help=True)
Bootstrap = Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka of the running stack")]
REPLAY_GROUP = "registry-dlq-replay"


@dataclass
class DeadLetter:
    """One record of a DLQ topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        return next((v.decode("utf-8", "replace") for k, v in self.headers if k == name), None)

    def claimed_key_id(self) -> str | None:
        """The ``ce_keyid`` the letter names: a claim, proven only by its signature."""
        return next((v.decode("utf-8", "replace") for k, v in self.headers if k.lower() == KEYID_HEADER), None)

    def signed_by(self, api_key: str | None) -> bool:
        """Whether ``api_key`` signed this letter: its ``ce_keyid`` is the key's id and its signature verifies."""
        parsed = parse_api_key(api_key) if api_key else None
        if parsed is None or self.claimed_key_id() != parsed[0]:
            return False
        try:
            proof = decode(self.value or b"", [(k, v) for k, v in self.headers if not k.startswith("dlq_")]).proof
        except EnvelopeError:
            return False
        return proof is not None and proof.key_id == parsed[0] and signature_matches(signing_key(parsed[1]), proof)

    def original_headers(self, api_key: str | None = None) -> list[tuple[str, bytes]]:
        """The headers it had before it was dead-lettered; signed again with ``api_key`` only if that key signed it."""
        kept = [(k, v) for k, v in self.headers if not k.startswith("dlq_")]
        if api_key is None or not self.signed_by(api_key):
            return kept
        resigned = {"authorization", KEYID_HEADER, SIGNATURE_HEADER}
        kept = [(k, v) for k, v in kept if k.lower() not in resigned]
        binary = not any(k.lower() == "content-type" and v.startswith(STRUCTURED.encode()) for k, v in kept)
        if binary:
            now = utc_text(datetime.now(UTC)).encode()
            kept = [(k, v) for k, v in kept if k.lower() != "ce_time"] + [("ce_time", now)]
        attributes = self._attributes(kept, binary=binary)
        return kept + signature_headers(api_key, attributes=attributes, value=self.value or b"")

    def _attributes(self, headers: list[tuple[str, bytes]], *, binary: bool) -> dict[str, str]:
        """The CloudEvent attributes a signature covers, from the headers or the structured body."""
        if binary:
            found = {k.lower()[3:]: v.decode("utf-8", "replace") for k, v in headers if k.lower().startswith("ce_")}
        else:
            body: Any = None
            with contextlib.suppress(ValueError):
                body = json.loads(self.value or b"{}")
            found = {k: str(v) for k, v in body.items() if k != "data"} if isinstance(body, dict) else {}
        return {name: found.get(name, "") for name in ("id", "source", "type", "time")} | (
            {"subject": found["subject"]} if found.get("subject") else {}
        )

    def summary(self) -> dict[str, Any]:
        return {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "source": f"{self.header('dlq_source_topic')}[{self.header('dlq_source_partition')}]"
            f"@{self.header('dlq_source_offset')}",
            "reason": self.header("dlq_reason"),
            "error": self.header("dlq_error"),
            "failed_at": self.header("dlq_failed_at"),
            "ce_type": self.header("ce_type"),
            "ce_keyid": self.claimed_key_id(),
            "key": self.key.decode("utf-8", "replace") if self.key else None,
        }

    def replay_line(self, api_key: str | None, *, dry_run: bool) -> str:
        """What a replay does with this letter, naming the key id it claims."""
        where = self.summary()["source"]
        claimed = self.claimed_key_id() or "none"
        if api_key is not None and self.signed_by(api_key):
            done = "re-signed with the replaying key"
        elif api_key is not None:
            done = "sent with its original headers (the replaying key did not sign it; its signature may be stale)"
        else:
            done = "sent with its original headers"
        return f"{'would be ' if dry_run else ''}{done}: {where} ce_type={self.header('ce_type')} ce_keyid={claimed}"


@contextlib.asynccontextmanager
async def dead_letter_reader(bootstrap: str, *, group: str | None, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer, stopped on exit whatever happened.

    It never joins the group (no rebalance wait): ``group`` only names where offsets are committed.
    ``options`` go to aiokafka (TLS: :func:`registry_cli.stack_tls.kafka_client_options`).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest", **options
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_dead_letters(consumer: AIOKafkaConsumer, topic: str, *, from_start: bool) -> list[DeadLetter]:
    """Every record of ``topic`` after the committed offsets (or from the start) up to the ends seen at first."""
    await consumer.topics()  # loads metadata, so the topic's partitions are known
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    if from_start:
        await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    letters: list[DeadLetter] = []
    while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
        batches = await consumer.getmany(timeout_ms=1000)
        for records in batches.values():
            letters += [DeadLetter(r.partition, r.offset, r.key, r.value, list(r.headers or ())) for r in records]
    return letters


async def replay(
    bootstrap: str, topic: str, *, dry_run: bool, api_key: str | None = None, **options: Any
) -> list[DeadLetter]:
    """Republish every dead letter of ``topic``.dlq not replayed before.

    All or nothing by design: a filter would have to leave holes in the group's offsets.
    Raises :class:`NotAKey` when ``api_key`` is not an API key.
    """
    if api_key is not None and parse_api_key(api_key) is None:
        raise NotAKey("--api-key is not an API key of the form mr_<id>_<secret>")
    async with dead_letter_reader(bootstrap, group=REPLAY_GROUP, **options) as consumer:
        letters = await read_dead_letters(consumer, f"{topic}.dlq", from_start=False)
        if dry_run or not letters:
            return letters
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
        await producer.start()
        try:
            for letter in letters:
                await producer.send_and_wait(
                    letter.header("dlq_source_topic") or topic,
                    letter.value,
                    key=letter.key,
                    headers=letter.original_headers(api_key),
                )
        finally:
            await producer.stop()
        await consumer.commit()  # only after every send was acknowledged: a crash replays again
        return letters


async def show_dead_letters(bootstrap: str, topic: str, **options: Any) -> list[DeadLetter]:
    """Every dead letter of ``topic``.dlq, from the start; commits nothing."""
    async with dead_letter_reader(bootstrap, group=None, **options) as consumer:
        return await read_dead_letters(consumer, f"{topic}.dlq", from_start=True)


@dlq_app.command("show")
def show(
    topic: Annotated[str, typer.Argument(help="The source topic, e.g. registry.commands")],
    bootstrap_servers: Bootstrap = "127.0.0.1:9092",
) -> None:
    """Print every dead letter of ``<topic>.dlq`` as JSON lines (reason, error, source position)."""
    for letter in asyncio.run(show_dead_letters(bootstrap_servers, topic, **kafka_client_options(StackSettings()))):
        typer.echo(json.dumps(letter.summary()))


@dlq_app.command("replay")
def replay_command(
    topic: Annotated[str, typer.Argument(help="The source topic, e.g. registry.commands")],
    dry_run: Annotated[bool, typer.Option(help="List what would be replayed; send nothing")] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="REGISTRY_API_KEY",
            help="Re-sign, with this key, the letters it signed; others keep their original headers",
        ),
    ] = None,
    bootstrap_servers: Bootstrap = "127.0.0.1:9092",
) -> None:
    """Send dead letters not replayed before back to their source topic, original headers and key."""
    options = kafka_client_options(StackSettings())  # with REGISTRY_STACK_TLS=true: the stack's certificate
    try:
        letters = asyncio.run(replay(bootstrap_servers, topic, dry_run=dry_run, api_key=api_key, **options))
    except NotAKey as exc:
        raise typer.BadParameter(str(exc), param_hint="--api-key") from None
    for letter in letters:
        typer.echo(letter.replay_line(api_key, dry_run=dry_run))
    verb = "would replay" if dry_run else "replayed"
    typer.echo(f"{verb} {len(letters)} record(s) to {topic}")
