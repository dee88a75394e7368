"""Applying commands to the versions one batch touches, collecting writes and outcome events."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from registration import domain
from registration.changes import Changes, ModelChange
from shared import catalog, messages
from shared.auth import Principal
from shared.envelope import CloudEvent
from shared.ids import ANONYMOUS
from shared.mongo import Document
from shared.outbox import outbox_row
from shared.views import version_public

SOURCE = "/registry/registration"


class BatchState:
    """The known versions of a batch (loaded and created), updated in memory as commands apply."""

    def __init__(self, versions: dict[str, Document], models: dict[str, Document], now: datetime) -> None:
        self.versions, self.models, self.now = versions, models, now
        self.changes = Changes()

    def outbox_of(self, command_key: str) -> Document:
        """The outcome row this batch wrote for the command ``command_key``."""
        return next(doc for doc in self.changes.outbox if doc.get("command_key") == command_key)

    def apply(
        self,
        command: CloudEvent,
        principal: Principal | None,
        data: Any,
        *,
        stamp: dict[str, str],
        throttled: bool = False,
    ) -> tuple[CloudEvent, Document | None]:
        """Apply one parsed command; return its outcome event and the version it touched.

        ``stamp`` (the command's scoped key, and fingerprint if any) is written on its outcome row.
        """
        event, version = self._apply(command, principal, data, throttled=throttled)
        self.changes.outbox[-1] |= stamp  # every command emits exactly one outcome row, the last
        return event, version

    def _apply(
        self, command: CloudEvent, principal: Principal | None, data: Any, *, throttled: bool
    ) -> tuple[CloudEvent, Document | None]:
        try:
            if principal is None:  # before validation: say nothing about the data to strangers
                raise domain.Unauthenticated("the command needs an authorization header with a valid API key")
            if throttled:
                raise domain.RateLimited("this key sent commands faster than its limit; retry later")
            if isinstance(data, domain.RegistrationError):
                raise data
            _authorize(principal, data)
            if isinstance(data, messages.ShareModel):
                return self._share(command, principal, data), None
            if isinstance(data, messages.RegisterModelVersion):
                return self._register(command, principal, data)
            if isinstance(data, messages.UpdateModelVersion):
                return self._update(command, data)
            if isinstance(data, messages.SetVersionLifecycle):
                return self._set_lifecycle(command, data)
            raise domain.InvalidCommand(f"unsupported command type {command.type!r}")
        except domain.RegistrationError as error:
            return self._reject(command, principal, data, error), None

    def _register(
        self, command: CloudEvent, principal: Principal, data: messages.RegisterModelVersion
    ) -> tuple[CloudEvent, Document]:
        version_id = domain.version_id(data.team, data.name, data.version)
        existing = self.versions.get(version_id)
        if existing is not None:
            raise domain.DuplicateVersion(
                f"{data.team}/{data.name} already has version {existing['version']}, "
                f"which has the same SemVer precedence as {data.version}"
            )
        model = self._model(data)
        tag_pairs = [f"{k}:{v}" for k, v in data.tags.items()]
        version = {
            "_id": version_id,
            "model_id": model.model_id,
            "team": data.team,
            "name": data.name,
            "version": data.version,
            "version_key": domain.version_key(data.version),
            "prerelease": "-" in data.version.split("+", 1)[0],
            **data.model_dump(exclude={"team", "name", "version"}),
            "tag_pairs": tag_pairs,
            "lifecycle": "active",
            "created_at": self.now,
            "updated_at": self.now,
            "created_by": principal.key_id,
            "command_id": command.id,
        }
        self.versions[version_id] = version
        self.changes.new_versions.append(version)
        model.added_versions += 1
        rank = domain.latest_rank(data.version)
        if model.headline is None or model.headline["latest_rank"] < rank:
            model.headline = {
                "latest_rank": rank,
                "latest_version": data.version,
                "framework": data.framework,
                "deployment_targets": list(data.deployment_targets),
                "description": data.description,
                "tags": dict(data.tags),
                "tag_pairs": tag_pairs,
            }
        event = self._emit(command, messages.MODEL_VERSION_REGISTERED, data, data.version, version_public(version))
        return event, version

    def _update(self, command: CloudEvent, data: messages.UpdateModelVersion) -> tuple[CloudEvent, Document]:
        version = self._existing(data)
        changed = data.model_dump(include={"description", "tags", "metrics"}, exclude_none=True)
        if not changed:
            raise domain.InvalidCommand("nothing to update: give description, tags or metrics")
        if "tags" in changed:
            changed["tag_pairs"] = [f"{k}:{v}" for k, v in changed["tags"].items()]
        self._set_version(version, {**changed, "updated_at": self.now})
        headline = {k: v for k, v in changed.items() if k != "metrics"}
        if headline:
            self._model(data).edits.append((version["version"], headline))
        else:
            self._model(data)
        public = {k: v for k, v in changed.items() if k in ("description", "tags", "metrics")}
        payload = {**self._ref(version), "changes": public}
        return self._emit(command, messages.MODEL_VERSION_UPDATED, data, version["version"], payload), version

    def _set_lifecycle(self, command: CloudEvent, data: messages.SetVersionLifecycle) -> tuple[CloudEvent, Document]:
        version = self._existing(data)
        previous = version.get("lifecycle", "active")
        domain.check_lifecycle_move(previous, data.state)
        self._set_version(version, {"lifecycle": data.state, "updated_at": self.now})
        self._model(data)
        payload = {**self._ref(version), "from": previous, "to": data.state}
        return self._emit(command, messages.VERSION_LIFECYCLE_CHANGED, data, version["version"], payload), version

    def _reject(
        self, command: CloudEvent, principal: Principal | None, data: Any, error: domain.RegistrationError
    ) -> CloudEvent:
        # Filed under the sender: a model of the sender's own team (or any, for a platform admin),
        # else the sender's team with no model; nothing unauthenticated lands in a team's stream,
        # webhooks or audit because of a team name written in a payload.
        claimed = data if isinstance(data, messages.ModelRef) else None
        team_claim = claimed.team if claimed else _slug(command.data.get("team"))
        name_claim = claimed.name if claimed else _slug(command.data.get("name"))
        team: str | None = principal.team if principal else None
        name: str | None = None
        if principal is not None and team_claim and name_claim and principal.acts_for(team_claim):
            team, name = team_claim, name_claim
        rejected = messages.CommandRejected(
            command_id=command.id,
            command_type=command.type,
            reason=error.reason,
            message=error.message,
            errors=error.errors,
            team=team,
            name=name,
        )
        return self._emit(command, messages.COMMAND_REJECTED, None, None, rejected.model_dump(), team=team, name=name)

    def _share(self, command: CloudEvent, principal: Principal, data: messages.ShareModel) -> CloudEvent:
        model_id = domain.model_id(data.team, data.name)
        model = self.models.get(model_id)
        if model is None:
            raise domain.NotFound(f"model {data.team}/{data.name} does not exist")
        if data.with_team == data.team:
            raise domain.InvalidCommand("a model cannot be shared with its own team")
        readers = set(model.get("readers") or [data.team])
        share_id = f"{model_id}:{data.with_team}"
        change = self._model(data)
        payload = {"model_id": model_id, "team": data.team, "name": data.name, "with_team": data.with_team}
        if command.type == messages.SHARE_MODEL:
            if data.with_team in readers:
                raise domain.Conflict(f"{data.team}/{data.name} is already shared with {data.with_team}")
            readers.add(data.with_team)
            change.add_readers.add(data.with_team)
            change.remove_readers.discard(data.with_team)
            self.changes.shares_added.append(
                {
                    "_id": share_id,
                    **payload,
                    "created_at": self.now,
                    "created_by": principal.key_id,
                }
            )
            event_type = messages.MODEL_SHARED
        else:
            if data.with_team not in readers:
                raise domain.NotFound(f"{data.team}/{data.name} is not shared with {data.with_team}")
            readers.discard(data.with_team)
            change.remove_readers.add(data.with_team)
            change.add_readers.discard(data.with_team)
            self.changes.shares_removed.append(share_id)
            event_type = messages.MODEL_UNSHARED
        model["readers"] = sorted(readers)
        return self._emit(command, event_type, data, None, payload)

    # --- helpers ----------------------------------------------------------------------------
    def _model(self, ref: messages.ModelRef) -> ModelChange:
        model_id = domain.model_id(ref.team, ref.name)
        if model_id not in self.changes.models:
            self.changes.models[model_id] = ModelChange(model_id, ref.team, ref.name, self.now)
        return self.changes.models[model_id]

    def _existing(self, data: messages.VersionRef) -> Document:
        version = self.versions.get(domain.version_id(data.team, data.name, data.version))
        if version is None:
            raise domain.NotFound(f"{data.team}/{data.name} has no version {data.version}")
        return version

    @staticmethod
    def _ref(version: Document) -> dict[str, Any]:
        return {k: version[k] for k in ("model_id", "team", "name", "version")}

    def _set_version(self, version: Document, fields: dict[str, Any]) -> None:
        version.update(fields)
        if not any(v is version for v in self.changes.new_versions):
            self.changes.version_sets.setdefault(version["_id"], {}).update(fields)

    def _emit(
        self,
        command: CloudEvent,
        event_type: str,
        ref: messages.ModelRef | None,
        version: str | None,
        data: dict[str, Any],
        *,
        team: str | None = None,
        name: str | None = None,
    ) -> CloudEvent:
        team, name = (ref.team, ref.name) if ref else (team, name)
        key = f"{team}/{name}" if team and name else (team or ANONYMOUS)
        event = CloudEvent(
            source=SOURCE,
            type=event_type,
            time=self.now,
            subject=(key + (f"@{version}" if version else "")) or None,
            correlation_id=command.correlation_id,
            causation_id=command.id,
            data=data,
        )
        accepted = event_type != messages.COMMAND_REJECTED and ref is not None
        model = domain.model_id(ref.team, ref.name) if accepted and ref else None
        self.changes.outbox.append(outbox_row(event, key=key, team=team, model_id=model))
        return event


_REQUIRED_SCOPE: dict[type[Any], str] = {
    messages.RegisterModelVersion: "models:write",
    messages.UpdateModelVersion: "models:write",
    messages.SetVersionLifecycle: "models:write",
    messages.ShareModel: "team:admin",
}


def _authorize(principal: Principal, data: Any) -> None:
    """The key must hold the command's scope and act for the model's team."""
    scope = _REQUIRED_SCOPE.get(type(data))
    if scope is None or not isinstance(data, messages.ModelRef):
        return
    if not principal.has(scope):
        raise domain.Forbidden(f"this key lacks the {scope} scope")
    if not principal.acts_for(data.team):
        raise domain.Forbidden(f"this key belongs to team {principal.team!r}, not {data.team!r}")


def _slug(value: Any) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(catalog.SLUG_PATTERN, value) else None
