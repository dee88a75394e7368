"""Use cases that curate a model rather than add to it: aliases, approvals and the model's own metadata.

Each reads the model or version the batch loaded, checks its rule, records the change and returns
its outcome event (see :mod:`registration.usecases`, whose table maps commands to these).
"""

from __future__ import annotations

from registration import domain
from registration.batch import Applied, Batch
from registration.commands import Command
from registry_contract import messages


def set_alias(batch: Batch, command: Command, data: messages.SetAlias) -> Applied:
    """Point ``alias`` at a version, creating the alias or moving it from the version it named.

    Setting it to the version it already names changes nothing and is accepted like any set (a PUT
    is idempotent): its event says so (``previous_version`` equals ``version``), as approving an
    approved version records the decision again.
    """
    version = batch.version(data)
    if version.get("lifecycle") == "archived":
        raise domain.Conflict(f"{data.team}/{data.name} {version['version']} is archived: an alias cannot point at it")
    aliases = dict(batch.model(data).get("aliases") or {})
    previous = aliases.get(data.alias)
    if previous is None and len(aliases) >= domain.MAX_ALIASES:
        raise domain.Conflict(f"{data.team}/{data.name} already has {domain.MAX_ALIASES} aliases")
    if previous != version["version"]:
        aliases[data.alias] = version["version"]
        batch.set_model(data, {"aliases": aliases})
    payload = {**domain.model_ref(data), "alias": data.alias, "version": version["version"]}
    payload["previous_version"] = previous
    return batch.emit(command, messages.ALIAS_SET, data, payload, version=version["version"]), None


def remove_alias(batch: Batch, command: Command, data: messages.RemoveAlias) -> Applied:
    """Remove an alias; the version it pointed at is untouched."""
    aliases = dict(batch.model(data).get("aliases") or {})
    if data.alias not in aliases:
        raise domain.NotFound(f"{data.team}/{data.name} has no alias {data.alias!r}")
    previous = aliases.pop(data.alias)
    batch.set_model(data, {"aliases": aliases})
    payload = {**domain.model_ref(data), "alias": data.alias, "version": None, "previous_version": previous}
    return batch.emit(command, messages.ALIAS_REMOVED, data, payload), None


def set_approval(batch: Batch, command: Command, data: messages.SetApproval) -> Applied:
    """Record a decision on a version: approved (it may go to gated environments), rejected, or pending again."""
    version = batch.version(data)
    previous = (version.get("approval") or {}).get("status", "pending")
    assert command.principal is not None  # authorized before any use case runs
    approval = {"status": data.status, "by": command.principal.key_id, "at": batch.now, "comment": data.comment}
    batch.set_version(version, {"approval": approval, "updated_at": batch.now})
    payload = {
        **domain.version_ref(version),
        "from": previous,
        "to": data.status,
        "by": command.principal.key_id,
        "comment": data.comment,
    }
    event = batch.emit(command, messages.VERSION_APPROVAL_CHANGED, data, payload, version=version["version"])
    return event, version


def update_model(batch: Batch, command: Command, data: messages.UpdateModel) -> Applied:
    """Set the model's own description, owners, documentation, tags or links (only those given).

    A description or tags given here belong to the model from then on: the query's projection no
    longer heads the model with a version's own (it derives that from this event).
    """
    batch.model(data)  # it must exist
    changes = data.model_dump(include={"description", "owners", "documentation", "tags", "links"}, exclude_none=True)
    if not changes:
        raise domain.InvalidCommand("nothing to update: give description, owners, documentation, tags or links")
    batch.set_model(data, dict(changes))
    payload = {**domain.model_ref(data), "changes": changes}
    return batch.emit(command, messages.MODEL_UPDATED, data, payload), None
