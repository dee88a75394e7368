"""One function per command type: what it checks, what it changes, what it emits.

Each use case reads and changes the batch state (:class:`~registration.batch.Batch`) and returns
its outcome event with the version it touched; a rule it breaks is raised as a
:class:`~registration.domain.RegistrationError` and becomes the command's ``command_rejected``.
:data:`USE_CASES` maps each command type to its data model, the scope it needs, and its function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from registration import curation, domain, removal
from registration.batch import Applied, Batch
from registration.commands import Command
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.views import version_public

Data = TypeVar("Data", bound=messages.ModelRef)


def register_version(batch: Batch, command: Command, data: messages.RegisterModelVersion) -> Applied:
    """Add a version to a model (creating the model with its first version)."""
    version_id = domain.version_id(data.team, data.name, data.version)
    if (existing := batch.versions.get(version_id)) is not None:
        if existing.get("deleted"):
            raise domain.DuplicateVersion(
                f"{data.team}/{data.name} {existing['version']} was deleted, and a deleted version's number "
                f"(by SemVer precedence, so {data.version} too) is never reused"
            )
        raise domain.DuplicateVersion(
            f"{data.team}/{data.name} already has version {existing['version']}, "
            f"which has the same SemVer precedence as {data.version}"
        )
    assert command.principal is not None  # authorized before any use case runs
    if data.parent is not None:
        _check_parent(batch, data, data.parent, command.principal)
    provenance = batch.provenance.get(command.key)  # verified before the batch (a refusal never gets here)
    batch.ensure_model(data)
    version = domain.new_version(
        data, created_by=command.principal.key_id, command_id=command.event.id, now=batch.now, provenance=provenance
    )
    batch.add_version(version)
    event = batch.emit(command, messages.MODEL_VERSION_REGISTERED, data, version_public(version), version=data.version)
    return event, version


def _check_parent(
    batch: Batch, data: messages.RegisterModelVersion, parent: messages.VersionRef, principal: Principal
) -> None:
    """A parent must be another existing version the registering team may read (else: not found, alike)."""
    itself = (data.team, data.name, domain.version_key(data.version))
    if (parent.team, parent.name, domain.version_key(parent.version)) == itself:
        raise domain.InvalidCommand("a version cannot be its own parent", [domain.field_error("parent", "self")])
    found = batch.versions.get(domain.version_id(parent.team, parent.name, parent.version))
    model = batch.models.get(domain.model_id(parent.team, parent.name)) or {}
    readable = principal.is_platform_admin or data.team in (model.get("readers") or [parent.team])
    if found is None or found.get("deleted") or not readable:
        raise domain.NotFound(f"parent {parent.team}/{parent.name} {parent.version} does not exist")


def update_version(batch: Batch, command: Command, data: messages.UpdateModelVersion) -> Applied:
    """Change a version's description, tags or metrics."""
    version = batch.version(data)
    changed = data.model_dump(include={"description", "tags", "metrics"}, exclude_none=True)
    if not changed:
        raise domain.InvalidCommand("nothing to update: give description, tags or metrics")
    if "tags" in changed:
        changed["tag_pairs"] = domain.tag_pairs(changed["tags"])
    batch.set_version(version, {**changed, "updated_at": batch.now})
    public = {k: v for k, v in changed.items() if k in ("description", "tags", "metrics")}
    payload = {**domain.version_ref(version), "changes": public}
    return batch.emit(command, messages.MODEL_VERSION_UPDATED, data, payload, version=version["version"]), version


def share(batch: Batch, command: Command, data: messages.ShareModel) -> Applied:
    """Let another team read a model; sharing it again with a team that reads it changes nothing (a PUT)."""
    readers = _readers(batch, data)
    payload = domain.share_ref(data)
    if data.with_team in readers:
        return batch.emit(command, messages.MODEL_SHARED, data, payload), None
    if len(readers - {data.team}) >= batch.max_shares:
        raise domain.Conflict(
            f"{data.team}/{data.name} is already shared with {batch.max_shares} teams, the most a model may be "
            "(REGISTRATION_MAX_SHARES_PER_MODEL); unshare one first"
        )
    change = batch.model_change(data)
    change.add_readers.add(data.with_team)
    change.remove_readers.discard(data.with_team)
    assert command.principal is not None
    row = {"_id": domain.share_id(data), **payload, "created_at": batch.now, "created_by": command.principal.key_id}
    batch.changes.shares_added.append(row)
    batch.models[payload["model_id"]]["readers"] = sorted(readers | {data.with_team})
    return batch.emit(command, messages.MODEL_SHARED, data, payload), None


def unshare(batch: Batch, command: Command, data: messages.ShareModel) -> Applied:
    """Stop another team from reading a model."""
    readers = _readers(batch, data)
    if data.with_team not in readers:
        raise domain.NotFound(f"{data.team}/{data.name} is not shared with {data.with_team}")
    change = batch.model_change(data)
    change.remove_readers.add(data.with_team)
    change.add_readers.discard(data.with_team)
    batch.changes.shares_removed.append(domain.share_id(data))
    payload = domain.share_ref(data)
    batch.models[payload["model_id"]]["readers"] = sorted(readers - {data.with_team})
    return batch.emit(command, messages.MODEL_UNSHARED, data, payload), None


def _readers(batch: Batch, data: messages.ShareModel) -> set[str]:
    model = batch.model(data)
    if data.with_team == data.team:
        raise domain.InvalidCommand("a model cannot be shared with its own team")
    return set(model.get("readers") or [data.team])


@dataclass(frozen=True)
class UseCase(Generic[Data]):
    """A command type's data model, the scope its sender needs, and the function that applies it."""

    data: type[Data]
    scope: str
    apply: Callable[[Batch, Command, Data], Applied]


USE_CASES: dict[str, UseCase[Any]] = {
    messages.REGISTER_MODEL_VERSION: UseCase(messages.RegisterModelVersion, "models:write", register_version),
    messages.UPDATE_MODEL_VERSION: UseCase(messages.UpdateModelVersion, "models:write", update_version),
    messages.SET_VERSION_LIFECYCLE: UseCase(messages.SetVersionLifecycle, "models:write", removal.set_lifecycle),
    messages.SHARE_MODEL: UseCase(messages.ShareModel, "team:admin", share),
    messages.UNSHARE_MODEL: UseCase(messages.ShareModel, "team:admin", unshare),
    messages.SET_ALIAS: UseCase(messages.SetAlias, "models:write", curation.set_alias),
    messages.REMOVE_ALIAS: UseCase(messages.RemoveAlias, "models:write", curation.remove_alias),
    messages.SET_APPROVAL: UseCase(messages.SetApproval, "models:approve", curation.set_approval),
    messages.UPDATE_MODEL: UseCase(messages.UpdateModel, "models:write", curation.update_model),
    messages.DELETE_VERSION: UseCase(messages.DeleteVersion, "models:write", removal.delete_version),
}
