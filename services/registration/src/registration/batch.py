"""The state one batch of commands works on: the versions and models it touches, and its writes.

Use cases read and change this state in memory; every change is also recorded in
:class:`~registration.changes.Changes`, which the repository commits as one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import datetime
from typing import Any

from registration import domain
from registration.changes import Changes, ModelChange
from registration.commands import Command, Rejected
from registry_contract import catalog, messages
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.ids import ANONYMOUS
from shared.outbox.rows import outbox_row

SOURCE = "/registry/registration"
Applied = tuple[CloudEvent, Document | None]  # a use case's outcome event, and the version it touched


DEFAULT_MAX_SHARES = 50  # REGISTRATION_MAX_SHARES_PER_MODEL's default


class Batch:
    """The known versions and models of a batch (loaded and created), updated as commands apply."""

    def __init__(
        self,
        versions: dict[str, Document],
        models: dict[str, Document],
        now: datetime,
        *,
        max_shares: int = DEFAULT_MAX_SHARES,
        deployed: dict[str, dict[str, str]] | None = None,
        stored_models: Container[str] = (),
    ) -> None:
        self.versions, self.models, self.now = versions, models, now
        # Models not loaded because they are known to be stored (registrations of them read nothing).
        self.stored_models = stored_models
        # version id -> {environment: status}, from the tracker's events (versions to delete only)
        self.deployed = deployed or {}
        self.max_shares = max_shares  # teams a model may be shared with (REGISTRATION_MAX_SHARES_PER_MODEL)
        # command key -> the verified provenance of its registration (signatures are checked before the batch)
        self.provenance: dict[str, Document] = {}
        self.changes = Changes()

    def version(self, ref: messages.VersionRef) -> Document:
        """The version ``ref`` names, or :class:`~registration.domain.NotFound` (a deleted one too)."""
        version = self.versions.get(domain.version_id(ref.team, ref.name, ref.version))
        if version is None or version.get("deleted"):
            raise domain.NotFound(f"{ref.team}/{ref.name} has no version {ref.version}")
        return version

    def model(self, ref: messages.ModelRef) -> Document:
        """The model ``ref`` names, or :class:`~registration.domain.NotFound`."""
        model = self.models.get(domain.model_id(ref.team, ref.name))
        if model is None:
            raise domain.NotFound(f"model {ref.team}/{ref.name} does not exist")
        return model

    def shown(self, version: Document) -> Document:
        """``version`` as a command's answer shows it: with the aliases that name it (kept on its model)."""
        aliases = (self.models.get(version["model_id"]) or {}).get("aliases") or {}
        return {
            **version,
            "aliases": sorted(alias for alias, target in aliases.items() if target == version["version"]),
        }

    def set_model(self, ref: messages.ModelRef, fields: dict[str, Any]) -> None:
        """Set ``fields`` on the model as given (in memory too: a later command of the batch reads them)."""
        self.model_change(ref).fields.update(fields)
        self.model(ref).update(fields)

    def delete_version(self, version: Document, *, deleted_by: str) -> None:
        """Delete a stored version, leaving a tombstone that keeps its number from being reused."""
        version["deleted"] = True
        self.changes.deleted_versions.append(
            {
                "_id": version["_id"],
                "model_id": version["model_id"],
                "version": version["version"],
                "deleted": True,
                "deleted_at": self.now,
                "deleted_by": deleted_by,
            }
        )

    def add_version(self, version: Document) -> None:
        """Record a new version document."""
        self.versions[version["_id"]] = version
        self.changes.new_versions.append(version)

    def set_version(self, version: Document, fields: dict[str, Any]) -> None:
        """Change fields of a version (in memory, and as an update unless the batch created it)."""
        version.update(fields)
        if not any(v is version for v in self.changes.new_versions):
            self.changes.version_sets.setdefault(version["_id"], {}).update(fields)

    def ensure_model(self, ref: messages.ModelRef) -> None:
        """Create the model ``ref`` names unless it exists (its first version is being registered)."""
        model_id = domain.model_id(ref.team, ref.name)
        if model_id not in self.models and model_id not in self.stored_models:
            change = self.model_change(ref)
            change.creates = True
            self.models[model_id] = change.apply(None)

    def model_change(self, ref: messages.ModelRef) -> ModelChange:
        """The pending change of the model ``ref`` names (written only if it changes anything)."""
        model_id = domain.model_id(ref.team, ref.name)
        if model_id not in self.changes.models:
            self.changes.models[model_id] = ModelChange(model_id, ref.team, ref.name, self.now)
        return self.changes.models[model_id]

    def emit(
        self, command: Command, event_type: str, ref: messages.ModelRef, data: dict[str, Any], *, version: str = ""
    ) -> CloudEvent:
        """Record the outcome event of an accepted command, filed under its model."""
        key = f"{ref.team}/{ref.name}"
        event = self._event(command, event_type, key + (f"@{version}" if version else ""), data)
        self._outbox(command, event, key=key, team=ref.team, model_id=domain.model_id(ref.team, ref.name))
        return event

    def reject(self, command: Command, rejected: Rejected, claimed: messages.ModelRef | None) -> CloudEvent:
        """Record the ``command_rejected`` event of a refused command, filed under its sender.

        Under a model of the sender's own team (any team, for a platform admin), else under the
        sender's team with no model: nothing lands in a team's stream, webhooks or audit because
        of a team name written in a payload.
        """
        team, name = command.team, None
        team_claim = claimed.team if claimed else _slug(command.event.data.get("team"))
        name_claim = claimed.name if claimed else _slug(command.event.data.get("name"))
        if command.principal is not None and team_claim and name_claim and command.principal.acts_for(team_claim):
            team, name = team_claim, name_claim
        data = messages.CommandRejected(
            command_id=command.event.id,
            command_type=command.event.type,
            reason=rejected.reason,
            message=rejected.message,
            errors=rejected.errors,
            team=team,
            name=name,
        )
        key = f"{team}/{name}" if team and name else (team or ANONYMOUS)
        event = self._event(command, messages.COMMAND_REJECTED, key, data.model_dump())
        self._outbox(command, event, key=key, team=team, model_id=None)
        return event

    def outcome_row(self, command_key: str) -> Document:
        """The outcome row this batch wrote for the command ``command_key``."""
        return next(doc for doc in self.changes.outbox if doc.get("command_key") == command_key)

    def _event(self, command: Command, event_type: str, subject: str, data: dict[str, Any]) -> CloudEvent:
        return CloudEvent(
            source=SOURCE,
            type=event_type,
            time=self.now,
            subject=subject,
            correlation_id=command.event.correlation_id,
            causation_id=command.event.id,
            data=data,
        )

    def _outbox(self, command: Command, event: CloudEvent, *, key: str, team: str | None, model_id: str | None) -> None:
        row = outbox_row(event, key=key, team=team, model_id=model_id) | {"command_key": command.key}
        if command.fingerprint:
            row["fingerprint"] = command.fingerprint
        self.changes.outbox.append(row)


def _slug(value: Any) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(catalog.SLUG_PATTERN, value) else None
