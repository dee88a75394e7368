"""Command handling: validate, apply to the current state, and record the outcome event.

Commands are handled a batch at a time so that the whole batch is one MongoDB transaction
(the stand-in writes ~10x more documents per second in bulk than one at a time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from registration import domain
from registration.repository import ConcurrentWrite, Repository
from shared import messages
from shared.auth import Principal
from shared.envelope import CloudEvent
from shared.mongo import Document
from shared.sortkeys import time_key
from shared.views import version_public

SOURCE = "/registry/registration"


@dataclass(frozen=True)
class Command:
    """A command to handle, with the principal that sent it."""

    event: CloudEvent
    principal: Principal


@dataclass(frozen=True)
class Outcome:
    """What became of one command: its outcome event and, on success, the version."""

    command_id: str
    event: CloudEvent
    version: Document | None = None
    replayed: bool = False

    @property
    def rejected(self) -> bool:
        """Whether the command was refused."""
        return self.event.type == messages.COMMAND_REJECTED


@dataclass
class Changes:
    """Every write one batch makes; the repository commits it atomically."""

    new_models: dict[str, Document] = field(default_factory=dict)
    model_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_version_increments: dict[str, int] = field(default_factory=dict)
    new_versions: list[Document] = field(default_factory=list)
    version_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Document] = field(default_factory=list)


Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    # BSON dates keep milliseconds; truncate so stored and returned values agree.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def handle_commands(
    commands: Sequence[Command],
    *,
    repo: Repository,
    artifact_schemes: Sequence[str],
    retries: int = 5,
    clock: Clock = _utcnow,
) -> list[Outcome]:
    """Handle ``commands`` in order; a command already handled yields its stored outcome."""
    for attempt in range(retries + 1):
        try:
            return await _handle_once(commands, repo=repo, artifact_schemes=artifact_schemes, now=clock())
        except ConcurrentWrite:
            # Another writer (the HTTP path, another replica) touched the same model; reload.
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


async def _handle_once(
    commands: Sequence[Command], *, repo: Repository, artifact_schemes: Sequence[str], now: datetime
) -> list[Outcome]:
    done = await repo.outcomes_of([c.event.id for c in commands])
    parsed: list[tuple[Command, Any]] = []
    seen: set[str] = set()
    for command in commands:
        if command.event.id in done or command.event.id in seen:
            continue
        seen.add(command.event.id)
        parsed.append((command, _parse(command, artifact_schemes)))
    refs = {(d.team, d.name) for _, d in parsed if isinstance(d, messages.ModelRef)}
    models = await repo.models_by_ref(sorted(refs))
    wanted = [
        (models[(d.team, d.name)]["_id"], domain.version_key(d.version))
        for _, d in parsed
        if isinstance(d, messages.VersionRef) and (d.team, d.name) in models
    ]
    state = _BatchState(models, await repo.versions_by_key(wanted), now)
    fresh = {command.event.id: state.apply(command, data) for command, data in parsed}
    if state.changes.outbox:
        await repo.commit(state.changes)
    outcomes = []
    for command in commands:
        if command.event.id in fresh:
            outcomes.append(fresh[command.event.id])
        else:
            stored = done.get(command.event.id) or state.outbox_of(command.event.id)
            outcomes.append(Outcome(command.event.id, event_from_outbox(stored), replayed=True))
    return outcomes


def _parse(command: Command, artifact_schemes: Sequence[str]) -> Any:
    model = messages.COMMAND_MODELS.get(command.event.type)
    if model is None or command.event.type in (messages.SHARE_MODEL, messages.UNSHARE_MODEL):
        return domain.InvalidCommand(f"unsupported command type {command.event.type!r}")
    try:
        data = model.model_validate(command.event.data)
    except ValidationError as exc:
        errors = [{"loc": ["data", *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()]
        return domain.InvalidCommand("command data is invalid", errors)
    if isinstance(data, messages.RegisterModelVersion):
        try:
            domain.check_artifact_uri(data.artifact_uri, schemes=artifact_schemes)
        except domain.InvalidCommand as exc:
            return exc
    return data


class _BatchState:
    """The models and versions one batch touches, updated in memory as commands apply."""

    def __init__(
        self,
        models: dict[tuple[str, str], Document],
        versions: dict[tuple[str, str], Document],
        now: datetime,
    ) -> None:
        self.models, self.versions, self.now = models, versions, now
        self.changes = Changes()
        self._position = time.time_ns()

    def outbox_of(self, command_id: str) -> Document:
        return next(doc for doc in self.changes.outbox if doc["causation_id"] == command_id)

    def apply(self, command: Command, data: Any) -> Outcome:
        try:
            if isinstance(data, domain.RegistrationError):
                raise data
            if isinstance(data, messages.RegisterModelVersion):
                return self._register(command, data)
            if isinstance(data, messages.UpdateModelVersion):
                return self._update(command, data)
            if isinstance(data, messages.SetVersionLifecycle):
                return self._set_lifecycle(command, data)
            raise domain.InvalidCommand(f"unsupported command type {command.event.type!r}")
        except domain.RegistrationError as error:
            return self._reject(command, data, error)

    # --- use cases --------------------------------------------------------------------------
    def _register(self, command: Command, data: messages.RegisterModelVersion) -> Outcome:
        model = self.models.get((data.team, data.name))
        if model is None:
            model = domain.new_model(team=data.team, name=data.name, now=self.now)
            self.models[(data.team, data.name)] = model
            self.changes.new_models[model["_id"]] = model
        key = domain.version_key(data.version)
        existing = self.versions.get((model["_id"], key))
        if existing is not None:
            raise domain.DuplicateVersion(
                f"{data.team}/{data.name} already has version {existing['version']}, "
                f"which has the same SemVer precedence as {data.version}"
            )
        fields = data.model_dump(exclude={"team", "name", "version"})
        version = {
            "_id": f"ver_{command.event.id}",
            "model_id": model["_id"],
            "team": data.team,
            "name": data.name,
            "version": data.version,
            "version_key": key,
            "prerelease": "-" in data.version.split("+", 1)[0],
            **fields,
            "tag_pairs": [f"{k}:{v}" for k, v in data.tags.items()],
            "lifecycle": "active",
            "created_at": self.now,
            "updated_at": self.now,
            "created_by": command.principal.key_id,
            "command_id": command.event.id,
        }
        self.versions[(model["_id"], key)] = version
        self.changes.new_versions.append(version)
        self._count_version(model)
        rank = domain.latest_rank(data.version)
        if rank > model.get("latest_rank", ""):
            self._set_model(
                model,
                {
                    "latest_rank": rank,
                    "latest_version": data.version,
                    "framework": data.framework,
                    "deployment_targets": list(data.deployment_targets),
                    "description": data.description,
                    "tags": dict(data.tags),
                    "tag_pairs": version["tag_pairs"],
                },
            )
        self._touch(model)
        event = self._emit(command, messages.MODEL_VERSION_REGISTERED, model, data.version, version_public(version))
        return Outcome(command.event.id, event, version)

    def _update(self, command: Command, data: messages.UpdateModelVersion) -> Outcome:
        model, version = self._existing(data)
        changed = data.model_dump(include={"description", "tags", "metrics"}, exclude_none=True)
        if not changed:
            raise domain.InvalidCommand("nothing to update: give description, tags or metrics")
        if "tags" in changed:
            changed["tag_pairs"] = [f"{k}:{v}" for k, v in changed["tags"].items()]
        changed["updated_at"] = self.now
        self._set_version(version, changed)
        if model.get("latest_version") == version["version"]:
            self._set_model(model, {k: v for k, v in changed.items() if k != "metrics"})
        self._touch(model)
        public = {k: v for k, v in changed.items() if k in ("description", "tags", "metrics")}
        payload = {
            "model_id": model["_id"],
            "team": data.team,
            "name": data.name,
            "version": version["version"],
            "changes": public,
        }
        event = self._emit(command, messages.MODEL_VERSION_UPDATED, model, version["version"], payload)
        return Outcome(command.event.id, event, version)

    def _set_lifecycle(self, command: Command, data: messages.SetVersionLifecycle) -> Outcome:
        model, version = self._existing(data)
        previous = version.get("lifecycle", "active")
        domain.check_lifecycle_move(previous, data.state)
        self._set_version(version, {"lifecycle": data.state, "updated_at": self.now})
        self._touch(model)
        payload = {
            "model_id": model["_id"],
            "team": data.team,
            "name": data.name,
            "version": version["version"],
            "from": previous,
            "to": data.state,
        }
        event = self._emit(command, messages.VERSION_LIFECYCLE_CHANGED, model, version["version"], payload)
        return Outcome(command.event.id, event, version)

    def _reject(self, command: Command, data: Any, error: domain.RegistrationError) -> Outcome:
        ref = data if isinstance(data, messages.ModelRef) else None
        rejected = messages.CommandRejected(
            command_id=command.event.id,
            command_type=command.event.type,
            reason=error.reason,
            message=error.message,
            errors=error.errors,
            team=ref.team if ref else _str_or_none(command.event.data.get("team")),
            name=ref.name if ref else _str_or_none(command.event.data.get("name")),
        )
        model = self.models.get((ref.team, ref.name)) if ref else None
        event = self._emit(command, messages.COMMAND_REJECTED, model, None, rejected.model_dump(), ref=ref)
        return Outcome(command.event.id, event)

    # --- helpers ----------------------------------------------------------------------------
    def _existing(self, data: messages.VersionRef) -> tuple[Document, Document]:
        model = self.models.get((data.team, data.name))
        version = self.versions.get((model["_id"], domain.version_key(data.version))) if model else None
        if model is None or version is None:
            raise domain.NotFound(f"{data.team}/{data.name} has no version {data.version}")
        return model, version

    def _count_version(self, model: Document) -> None:
        model["version_count"] = model.get("version_count", 0) + 1
        if model["_id"] not in self.changes.new_models:
            increments = self.changes.model_version_increments
            increments[model["_id"]] = increments.get(model["_id"], 0) + 1

    def _touch(self, model: Document) -> None:
        self._set_model(model, {"updated_at": self.now, "updated_key": time_key(self.now, model["_id"])})

    def _set_model(self, model: Document, fields: dict[str, Any]) -> None:
        model.update(fields)
        if model["_id"] not in self.changes.new_models:
            self.changes.model_sets.setdefault(model["_id"], {}).update(fields)

    def _set_version(self, version: Document, fields: dict[str, Any]) -> None:
        version.update(fields)
        if not any(v is version for v in self.changes.new_versions):
            self.changes.version_sets.setdefault(version["_id"], {}).update(fields)

    def _emit(
        self,
        command: Command,
        event_type: str,
        model: Document | None,
        version: str | None,
        data: dict[str, Any],
        *,
        ref: messages.ModelRef | None = None,
    ) -> CloudEvent:
        team = model["team"] if model else (ref.team if ref else data.get("team"))
        name = model["name"] if model else (ref.name if ref else data.get("name"))
        subject = f"{team}/{name}" + (f"@{version}" if version else "") if team and name else None
        event = CloudEvent(
            source=SOURCE,
            type=event_type,
            time=self.now,
            subject=subject,
            correlation_id=command.event.correlation_id,
            causation_id=command.event.id,
            data=data,
        )
        self._position += 1
        self.changes.outbox.append(
            {
                "_id": event.id,
                "type": event.type,
                "source": event.source,
                "subject": event.subject,
                "time": event.time,
                "correlation_id": event.correlation_id,
                "causation_id": event.causation_id,
                "key": f"{team}/{name}" if team and name else command.event.subject or "",
                "data": data,
                "team": team,
                "model_id": model["_id"] if model and event_type != messages.COMMAND_REJECTED else None,
                "position": self._position,
                "sent": False,
            }
        )
        return event


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def event_from_outbox(doc: Document) -> CloudEvent:
    """Rebuild the CloudEvent that an outbox row stands for."""
    return CloudEvent(
        id=doc["_id"],
        source=doc["source"],
        type=doc["type"],
        time=doc["time"],
        subject=doc.get("subject"),
        correlation_id=doc["correlation_id"],
        causation_id=doc.get("causation_id"),
        data=doc["data"],
    )
