"""Use cases that take something away from a model: a version's lifecycle moves, a version is deleted.

Both can change which version is the model's latest (its headline): the highest non-prerelease
version that is ``active`` (else the highest active prerelease). That is recomputed from the
model's newest versions, which the batch loads for these commands (:attr:`Batch.candidates`).
"""

from __future__ import annotations

from registration import domain
from registration.batch import Applied, Batch
from registration.changes import OWNABLE
from registration.commands import Command
from shared.contract import messages
from shared.contract.documents import Document

LIVE_STATUSES = frozenset({"deploying", "deployed"})


def set_lifecycle(batch: Batch, command: Command, data: messages.SetVersionLifecycle) -> Applied:
    """Move a version between active, deprecated and archived (archiving refuses while an alias points at it)."""
    version = batch.version(data)
    previous = version.get("lifecycle", "active")
    domain.check_lifecycle_move(previous, data.state)
    if data.state == "archived" and (aliases := _aliases_of(batch, data, version["version"])):
        raise domain.Conflict(f"{version['version']} is what alias {', '.join(aliases)} points at: move it first")
    batch.set_version(version, {"lifecycle": data.state, "updated_at": batch.now})
    _rehead(batch, data)
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
    batch.model_change(data).added_versions -= 1
    _rehead(batch, data)
    payload = domain.version_ref(version)
    return batch.emit(command, messages.MODEL_VERSION_DELETED, data, payload, version=version["version"]), None


def _aliases_of(batch: Batch, ref: messages.ModelRef, version: str) -> list[str]:
    model = batch.models.get(domain.model_id(ref.team, ref.name)) or {}
    return sorted(alias for alias, target in (model.get("aliases") or {}).items() if target == version)


def _rehead(batch: Batch, ref: messages.ModelRef) -> None:
    """Make the model's headline its best active version now (or none), whatever the stored rank."""
    model_id = domain.model_id(ref.team, ref.name)
    best = best_active(batch.candidates_of(model_id))
    fields = domain.headline_of(best) if best is not None else {"latest_version": None, "latest_rank": ""}
    model = batch.models.get(model_id) or {}
    owned = {f for name in model.get("own_metadata") or [] for f in OWNABLE.get(name, ())}
    change = batch.model_change(ref)
    change.headline = None  # superseded: this batch's registrations are among the candidates
    change.fields.update({k: v for k, v in fields.items() if k not in owned})


def best_active(versions: list[Document]) -> Document | None:
    """The version that should head its model: the best-ranked active one (stable before prerelease)."""
    active = [v for v in versions if v.get("lifecycle", "active") == "active"]
    return max(active, key=lambda v: domain.latest_rank(v["version"]), default=None)
