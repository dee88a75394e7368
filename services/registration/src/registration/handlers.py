"""Command handling: validate, apply to the current state, and record the outcome event.

Commands are handled a batch at a time, and the batch is one MongoDB transaction: the stand-in
writes several times more documents per second in bulk than one at a time. A batch is first
tried optimistically, without reading what registrations might collide with (unique indexes
catch that); only when the commit reports a duplicate key is it re-run reading everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from registration import domain
from registration.batch import BatchState
from registration.repository import ConcurrentWrite, Repository
from shared import messages
from shared.auth import Principal
from shared.envelope import CloudEvent
from shared.ids import sender_scoped
from shared.mongo import Document
from shared.outbox import event_from_outbox

__all__ = ["Command", "Outcome", "event_from_outbox", "handle_commands"]


@dataclass(frozen=True)
class Command:
    """A command to handle, with the principal that sent it."""

    event: CloudEvent
    principal: Principal | None  # None: the command carried no valid key
    throttled: bool = False  # the key is over its command rate
    # What an HTTP request asked for, to tell a retry from a reused Idempotency-Key (Kafka: none).
    fingerprint: str | None = None

    @property
    def key(self) -> str:
        """The command's identity: its ``ce_id`` within the sending team's namespace.

        Ids are chosen by senders, so they are only unique per sender: a command of another
        team, or of nobody, with the same id is a different command and never suppresses this one.
        """
        return sender_scoped(self.principal.team if self.principal else None, self.event.id)


def request_fingerprint(command_type: str, data: dict[str, Any]) -> str:
    """The digest of what a request asks for (command type and data)."""
    canonical = json.dumps([command_type, data], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What became of one command: its outcome event and, on success, the version."""

    command_id: str
    event: CloudEvent
    version: Document | None = None
    replayed: bool = False
    fingerprint: str | None = None  # of the command that produced the stored outcome (on replays)

    @property
    def rejected(self) -> bool:
        """Whether the command was refused."""
        return self.event.type == messages.COMMAND_REJECTED


def utcnow() -> datetime:
    """Now, truncated to milliseconds as BSON stores it, so stored and returned values agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def handle_commands(
    commands: Sequence[Command], *, repo: Repository, artifact_schemes: Sequence[str], retries: int = 5
) -> list[Outcome]:
    """Handle ``commands`` in order; one outcome per command, in their order.

    A command already handled yields its stored outcome.
    """
    careful = False
    for attempt in range(retries + 1):
        try:
            return await _handle_once(commands, repo=repo, artifact_schemes=artifact_schemes, careful=careful)
        except ConcurrentWrite:
            # A duplicate, a redelivery or another writer: re-run, reading everything first.
            careful = True
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


async def _handle_once(
    commands: Sequence[Command], *, repo: Repository, artifact_schemes: Sequence[str], careful: bool
) -> list[Outcome]:
    done = await repo.outcomes_of([c.key for c in commands]) if careful else {}
    parsed: list[tuple[Command, Any]] = []
    seen: set[str] = set()
    for command in commands:
        if command.key not in done and command.key not in seen:
            seen.add(command.key)
            parsed.append((command, _parse(command, artifact_schemes)))
    wanted = {
        domain.version_id(d.team, d.name, d.version)
        for _, d in parsed
        if isinstance(d, messages.VersionRef) and (careful or not isinstance(d, messages.RegisterModelVersion))
    }
    models = {domain.model_id(d.team, d.name) for _, d in parsed if isinstance(d, messages.ShareModel)}
    state = BatchState(await repo.versions_by_id(sorted(wanted)), await repo.models_by_id(sorted(models)), utcnow())
    fresh = {command.key: _outcome(state, command, data) for command, data in parsed}
    if state.changes.outbox:
        await repo.commit(state.changes)
    outcomes = []
    for command in commands:
        if command.key in fresh:
            outcomes.append(fresh[command.key])
        else:
            stored = done.get(command.key) or state.outbox_of(command.key)
            event = event_from_outbox(stored)
            outcomes.append(Outcome(command.event.id, event, replayed=True, fingerprint=stored.get("fingerprint")))
    return outcomes


def _outcome(state: BatchState, command: Command, data: Any) -> Outcome:
    stamp = {"command_key": command.key} | ({"fingerprint": command.fingerprint} if command.fingerprint else {})
    event, version = state.apply(command.event, command.principal, data, stamp=stamp, throttled=command.throttled)
    return Outcome(command.event.id, event, version)


def _parse(command: Command, artifact_schemes: Sequence[str]) -> Any:
    model = messages.COMMAND_MODELS.get(command.event.type)
    if model is None:
        return domain.InvalidCommand(f"unsupported command type {command.event.type!r}")
    try:
        data = model.model_validate(command.event.data)
    except ValidationError as exc:
        errors = [{"loc": ["data", *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()]
        return domain.InvalidCommand("command data is invalid", errors)
    if isinstance(data, messages.RegisterModelVersion):
        try:
            domain.check_artifact_uri(data.artifact_uri, schemes=artifact_schemes)
            domain.check_team_name(data.team)
        except domain.InvalidCommand as exc:
            return exc
    return data
