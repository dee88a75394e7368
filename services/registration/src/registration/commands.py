"""What arrives (a command with its sender) and what leaves (its outcome); parsing is a value."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from registration import domain
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.ids import sender_scoped
from registry_contract.messages import RejectReason


@dataclass(frozen=True)
class Command:
    """A command to handle, with the principal that sent it."""

    event: CloudEvent
    principal: Principal | None  # None: the command carried no valid key
    unproven: str | None = None  # with no principal: why the record proves none (told its sender)
    throttled: bool = False  # the key is over its command rate
    # What an HTTP request asked for, to tell a retry from a reused Idempotency-Key (Kafka: none).
    fingerprint: str | None = None
    # Its signature's check, when done before the command queued (HTTP): the provenance or refusal.
    signature_checked: Document | Rejected | None = None

    @property
    def key(self) -> str:
        """The command's identity: its ``ce_id`` within the sending team's namespace.

        Ids are chosen by senders, so they are only unique per sender: a command of another
        team, or of nobody, with the same id is a different command and never suppresses this one.
        """
        return sender_scoped(self.principal.team if self.principal else None, self.event.id)

    @property
    def team(self) -> str | None:
        """The sender's team (``None``: no valid key)."""
        return self.principal.team if self.principal else None


@dataclass(frozen=True)
class Outcome:
    """What became of one command: its outcome event and, on success, the version."""

    command_id: str
    event: CloudEvent
    version: Document | None = None
    replayed: bool = False
    fingerprint: str | None = None  # of the command that produced the stored outcome (on replays)
    # The model the outcome was filed under and its revision after it (the outcome row's position).
    model_id: str | None = None
    revision: int | None = None

    @property
    def consistency_token(self) -> str | None:
        """``r.<model_id>.<revision>``: what a read sends back to see this write (none for a refusal)."""
        if self.model_id is None or self.revision is None or self.rejected:
            return None
        return f"r.{self.model_id}.{self.revision}"

    @property
    def rejected(self) -> bool:
        """Whether the command was refused."""
        return self.event.type == messages.COMMAND_REJECTED


@dataclass(frozen=True)
class Rejected:
    """A command refused before it touched anything: its ``command_rejected`` reason and details."""

    reason: RejectReason
    message: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, error: domain.RegistrationError) -> Rejected:
        """The value of a refusal raised by a rule."""
        return cls(error.reason, error.message, error.errors)


def request_fingerprint(command_type: str, data: dict[str, Any]) -> str:
    """The digest of what a request asks for (command type and data)."""
    canonical = json.dumps([command_type, data], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse(command: Command, artifact_schemes: Sequence[str]) -> messages.ModelRef | Rejected:
    """The command's typed data, or why it is refused (never raises)."""
    model = messages.COMMAND_MODELS.get(command.event.type)
    if model is None:
        return Rejected("invalid", f"unsupported command type {command.event.type!r}")
    try:
        data = model.model_validate(command.event.data)
    except ValidationError as exc:
        errors = [{"loc": ["data", *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()]
        return Rejected("invalid", "command data is invalid", errors)
    if isinstance(data, messages.RegisterModelVersion):
        try:
            domain.check_artifact_uri(data.artifact_uri, schemes=artifact_schemes)
            domain.check_team_name(data.team)
        except domain.InvalidCommand as exc:
            return Rejected.of(exc)
    return data
