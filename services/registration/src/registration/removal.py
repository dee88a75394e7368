"""Use cases that take something away from a model: a version's lifecycle moves, a version is deleted.

Either can change which version heads the model; the query's projection works that out from the
events (registration keeps no headline).
"""

from __future__ import annotations

from registration import domain
from registration.batch import Applied, Batch
from registration.commands import Command
from registry_contract import messages

LIVE_STATUSES = frozenset({"deploying", "deployed"})


def set_lifecycle(batch: Batch, command: Command, data: messages.SetVersionLifecycle) -> Applied:
    """Move a version between active, deprecated and archived (archiving refuses while an alias points at it)."""
    version = batch.version(data)
    previous = version.get("lifecycle", "active")
    domain.check_lifecycle_move(previous, data.state)
    if data.state == "archived" and (aliases := _aliases_of(batch, data, version["version"])):
        raise domain.Conflict(f"{version['version']} is what alias {', '.join(aliases)} points at: move it first")
    batch.set_version(version, {"lifecycle": data.state, "updated_at": batch.now})
    payload = {**domain.version_ref(version), "from": previous, "to": data.state}
    return batch.emit(command, messages.VERSION_LIFECYCLE_CHANGED, data, payload, version=version["version"]), version


def delete_version(batch: Batch, command: Command, data: messages.DeleteVersion) -> Applied:
    """Delete a version that runs nowhere and that no alias names; its number is never reused."""
    version = batch.version(data)
    # Where it runs as the tracker's deployment_status_changed events told (registration/deployments.py).
    live = sorted(env for env, status in batch.deployed.get(version["_id"], {}).items() if status in LIVE_STATUSES)
    if live:
        raise domain.Conflict(f"{version['version']} is deployed or deploying in {', '.join(live)}")
    if aliases := _aliases_of(batch, data, version["version"]):
        raise domain.Conflict(f"{version['version']} is what alias {', '.join(aliases)} points at: move it first")
    assert command.principal is not None  # authorized before any use case runs
    batch.delete_version(version, deleted_by=command.principal.key_id)
    payload = domain.version_ref(version)
    return batch.emit(command, messages.MODEL_VERSION_DELETED, data, payload, version=version["version"]), None


def _aliases_of(batch: Batch, ref: messages.ModelRef, version: str) -> list[str]:
    model = batch.models.get(domain.model_id(ref.team, ref.name)) or {}
    return sorted(alias for alias, target in (model.get("aliases") or {}).items() if target == version)
