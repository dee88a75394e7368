"""Applying one ``registry.events`` event to the read model: pure functions, no I/O.

They build the documents the reads answer from: a model's readers, aliases and own metadata as
registration keeps them, and what only the query keeps (each model's headline, version count,
list and feed keys, former readers); the version rules; the deployment status rules (the
tracker's ``status_after``, which the query service may not import). Each event carries its
owner's revision of the model (``ce_revision``); an event at or below the revision already applied
from that owner is skipped, so replaying a log, or a catch-up that overlaps the topic, changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import semver

from query.projection.model import ReadModel
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.ids import version_doc_id, version_id
from registry_contract.sortkeys import text_key, time_key
from registry_contract.versioning import precedence_key

REPORT_RECORDED = "registry.event.deployment_report_recorded"
SOURCES = {"/registry/registration": "r", "/registry/deploy-tracker": "d"}
# Headline fields the model's own metadata owns once its team set them (update_model): versions no longer set them.
OWNABLE = {"description": ("description",), "tags": ("tags", "tag_pairs")}
# How far each deployment status has gone (the tracker's ADVANCEMENT): the overall status is the furthest.
ADVANCEMENT = {"registered": 0, "retired": 1, "rolled_back": 2, "failed": 3, "deploying": 4, "deployed": 5}
_TIME_FIELDS = ("created_at", "updated_at", "occurred_at", "received_at", "at")


def source_of(event: CloudEvent) -> str | None:
    """``r`` for registration's events, ``d`` for the tracker's, ``None`` for anyone else's."""
    return SOURCES.get(event.source)


def apply_event(model: ReadModel, event: CloudEvent) -> str | None:
    """Apply ``event``; return the id of the model it changed (``None``: skipped or not a change)."""
    source, handler = source_of(event), HANDLERS.get(event.type)
    model_id = event.data.get("model_id")
    if source is None or handler is None or not isinstance(model_id, str):
        return None
    if source != _OWNER[event.type]:
        return None  # only the owner of an event type is believed about it
    seen = model.revisions.get((source, model_id))
    if event.revision is not None and seen is not None and event.revision <= seen:
        return _late(model, event, source, model_id)
    if not handler(model, event, model_id):
        return None
    if event.revision is not None:
        model.revisions[(source, model_id)] = event.revision
        model.positions[source] = max(model.positions.get(source, 0), event.revision)
    model.dirty_models.add(model_id)
    if source == "r":
        model.history.setdefault(model_id, []).append(history_row(event, model_id))
    return model_id


def _late(model: ReadModel, event: CloudEvent, source: str, model_id: str) -> str | None:
    """An event at or below the revision applied: a replay (nothing to do), or one the topic lost.

    The topic's log can be lost while the owners' logs are away (the embedded broker forgets its
    topics): the projection then follows the new log, and the owners' catch-up brings the lost
    events later, older than what was applied. Registration's are folded in by replaying the
    model's own history with them; the tracker's reports are added, and its status changes
    applied when newer than the environment's entry.
    """
    if source == "r":
        if any(row["_id"] == event.id for row in model.history.get(model_id, [])):
            return None
        _replay_registration(model, model_id, event)
        return model_id
    if event.type == REPORT_RECORDED:
        row_id = _report_id(event.data, event.id)
        if any(row["_id"] == row_id for row in model.reports.get(model_id, [])):
            return None
        _report_recorded(model, event, model_id)
    else:
        version, state = _version_of(model, event.data), event.data.get("environment_state")
        if version is None or not isinstance(state, dict):
            return None
        current = (version.get("environments") or {}).get(event.data.get("environment"))
        stamped, known = _time(state.get("updated_at")), (current or {}).get("updated_at")
        if isinstance(known, datetime) and (not isinstance(stamped, datetime) or stamped <= known):
            return None
        _status_changed(model, event, model_id)
    model.dirty_models.add(model_id)
    return model_id


def _replay_registration(model: ReadModel, model_id: str, missed: CloudEvent) -> None:
    """Rebuild the model from its registration events plus ``missed``, keeping what the tracker set."""
    events = sorted([*map(event_of, model.history.pop(model_id, [])), missed], key=lambda e: e.revision or 0)
    versions = model.versions.pop(model_id, {})
    deployed: dict[str, dict[str, Any]] = {
        vid: {k: v[k] for k in ("status", "environments") if k in v} for vid, v in versions.items()
    }
    feed_key = (model.models.pop(model_id, None) or {}).get("feed_key", "")
    for vid, version in versions.items():
        model.version_owner.pop(vid, None)
        if parent := version.get("parent"):
            model.children.get(version_id(parent["team"], parent["name"], parent["version"]), set()).discard(vid)
    model.revisions.pop(("r", model_id), None)
    for event in events:
        apply_event(model, event)
    for vid, fields in deployed.items():
        if (found := model.version(vid)) is not None:
            found.update(fields)
    if (doc := model.models.get(model_id)) is not None:
        doc["feed_key"] = max(doc["feed_key"], feed_key)
    model.dirty_versions.update(versions)
    model.rewritten.add(model_id)


def event_of(row: Document) -> CloudEvent:
    """The event a history row records."""
    fields = ("source", "type", "time", "subject", "correlation_id", "causation_id", "data")
    return CloudEvent(id=row["_id"], revision=row.get("position"), **{k: row[k] for k in fields if k in row})


def history_row(event: CloudEvent, model_id: str) -> Document:
    """The event as registration's outbox stored it (``GET …/history`` reads these)."""
    return {
        "_id": event.id,
        "type": event.type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "data": event.data,
        "team": event.data.get("team"),
        "model_id": model_id,
        "position": event.revision,
    }


def _registered(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    data = event.data
    key = precedence_key(data["version"])
    version = dict(data) | {
        "_id": version_doc_id(model_id, key),
        "version_key": key,
        "prerelease": "-" in data["version"].split("+", 1)[0],
        "tag_pairs": tag_pairs(data.get("tags") or {}),
        "lifecycle": data.get("lifecycle") or "active",
        "created_at": event.time,
        "updated_at": event.time,
        "command_id": event.causation_id,
    }
    version.setdefault("aliases", [])
    _add_version(model, version)
    _change(model, event, model_id, added=1, headline=headline_of(version))
    return True


def _add_version(model: ReadModel, version: Document) -> None:
    vid, model_id = version["_id"], version["model_id"]
    model.versions.setdefault(model_id, {})[vid] = version
    model.version_owner[vid] = model_id
    model.dirty_versions.add(vid)
    if parent := version.get("parent"):
        model.children.setdefault(version_id(parent["team"], parent["name"], parent["version"]), set()).add(vid)


def _version_updated(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    version = _version_of(model, event.data)
    if version is None:
        return False
    changed = dict(event.data.get("changes") or {})
    if "tags" in changed:
        changed["tag_pairs"] = tag_pairs(changed["tags"])
    version.update(changed | {"updated_at": event.time})
    headline = {k: v for k, v in changed.items() if k != "metrics"}
    _change(model, event, model_id, edits=[(version["version"], headline)] if headline else [])
    return True


def _lifecycle_changed(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    version = _version_of(model, event.data)
    if version is None:
        return False
    version.update({"lifecycle": event.data["to"], "updated_at": event.time})
    _change(model, event, model_id, fields=_rehead(model, model_id))
    return True


def _deleted(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    version = _version_of(model, event.data)
    if version is None:
        return False
    vid = version["_id"]
    del model.versions[model_id][vid]
    model.version_owner.pop(vid, None)
    if parent := version.get("parent"):
        of = version_id(parent["team"], parent["name"], parent["version"])
        model.children.get(of, set()).discard(vid)
        if not model.children.get(of, True):
            del model.children[of]
    _change(model, event, model_id, added=-1, fields=_rehead(model, model_id))
    return True


def _shared(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    _change(model, event, model_id, add_readers={event.data["with_team"]})
    return True


def _unshared(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    _change(model, event, model_id, remove_readers={event.data["with_team"]})
    return True


def _alias_set(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    return _move_alias(model, event, model_id, target=event.data["version"])


def _alias_removed(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    return _move_alias(model, event, model_id, target=None)


def _move_alias(model: ReadModel, event: CloudEvent, model_id: str, *, target: str | None) -> bool:
    alias, stored = event.data["alias"], model.models.get(model_id)
    if stored is None:
        return False
    aliases = dict(stored.get("aliases") or {})
    previous = aliases.pop(alias, None)
    if target is not None:
        aliases[alias] = target
    for version in model.versions.get(model_id, {}).values():
        if version["version"] in (previous, target):
            model.dirty_versions.add(version["_id"])
            names = set(version.get("aliases") or []) - {alias}
            version["aliases"] = sorted(names | ({alias} if version["version"] == target else set()))
    _change(model, event, model_id, fields={"aliases": aliases})
    return True


def _approval_changed(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    version = _version_of(model, event.data)
    if version is None:
        return False
    data = event.data
    approval = {"status": data["to"], "by": data.get("by"), "at": event.time, "comment": data.get("comment")}
    version.update({"approval": approval, "updated_at": event.time})
    _change(model, event, model_id)
    return True


def _model_updated(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    stored = model.models.get(model_id)
    if stored is None:
        return False
    changes = dict(event.data.get("changes") or {})
    fields: dict[str, Any] = dict(changes)
    if "tags" in changes:
        fields["tag_pairs"] = tag_pairs(changes["tags"])
    fields["own_metadata"] = sorted(set(stored.get("own_metadata") or []) | ({"description", "tags"} & changes.keys()))
    _change(model, event, model_id, fields=fields)
    return True


def _status_changed(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    data = event.data
    version = _version_of(model, data)
    if version is None or model_id not in model.models:
        return False
    state = data.get("environment_state")
    if isinstance(state, dict):
        entry = {k: _time(v) if k in _TIME_FIELDS else v for k, v in state.items()}
    else:  # an event of a tracker before the environment entry was published
        entry = {"status": data["status"], "report_id": data.get("report_id"), "updated_at": event.time}
        entry["occurred_at"] = event.time
    environments = dict(version.get("environments") or {})
    environments[data["environment"]] = entry
    version["environments"] = environments
    version["status"] = overall(environments) if isinstance(state, dict) else data.get("overall_status")
    stamped = entry.get("updated_at")
    moved = stamped if isinstance(stamped, datetime) else event.time
    doc = model.models[model_id]
    doc["feed_key"] = max(doc.get("feed_key", ""), time_key(moved, model_id))
    return True


def _report_recorded(model: ReadModel, event: CloudEvent, model_id: str) -> bool:
    data = event.data
    row = {k: _time(v) if k in _TIME_FIELDS else v for k, v in data.items()}
    row["report_id"], row["_id"] = data.get("id", event.id), _report_id(data, event.id)
    model.reports.setdefault(model_id, []).append(row)
    return True


def _report_id(data: dict[str, Any], event_id: str) -> str:
    """A report row's id: its place in its version's history, else the report's own id."""
    if data.get("version_id") and data.get("position") is not None:
        return f"{data['version_id']}:{data['position']}"
    return str(data.get("id", event_id))


def _version_of(model: ReadModel, data: dict[str, Any]) -> Document | None:
    """The version ``data`` names (marked as changed: every caller changes it), or None."""
    try:
        found = model.version(version_id(data["team"], data["name"], data["version"]))
    except (KeyError, TypeError, ValueError):
        return None
    if found is not None:
        model.dirty_versions.add(found["_id"])
    return found


def _rehead(model: ReadModel, model_id: str) -> dict[str, Any]:
    """The model's headline now: its best active version's fields (stable before prerelease), or none."""
    active = [v for v in model.versions.get(model_id, {}).values() if v.get("lifecycle", "active") == "active"]
    best = max(active, key=lambda v: latest_rank(v["version"]), default=None)
    fields = headline_of(best) if best is not None else {"latest_version": None, "latest_rank": ""}
    owned = _owned(model.models.get(model_id) or {})
    return {k: v for k, v in fields.items() if k not in owned}


def _change(
    model: ReadModel,
    event: CloudEvent,
    model_id: str,
    *,
    added: int = 0,
    headline: dict[str, Any] | None = None,
    edits: list[tuple[str, dict[str, Any]]] | None = None,
    add_readers: set[str] | None = None,
    remove_readers: set[str] | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Change the model document as registration's ``ModelChange.apply`` does (creating it if new)."""
    team, name, now = event.data["team"], event.data["name"], event.time
    add, remove = add_readers or set(), remove_readers or set()
    doc = model.models.get(model_id) or {}
    doc.update({"_id": model_id, "team": team, "name": name, "name_key": text_key(name, model_id)})
    doc.setdefault("created_at", now)
    doc.setdefault("created_key", time_key(now, model_id))
    doc["updated_at"], doc["updated_key"] = now, time_key(now, model_id)
    doc["feed_key"] = time_key(now, model_id)
    doc["version_count"] = doc.get("version_count", 0) + added
    readers = (set(doc.get("readers") or [team]) | add) - remove
    doc["readers"] = sorted(readers | {team})
    doc["former_readers"] = sorted((set(doc.get("former_readers") or []) - add) | remove)
    unshared = {t: key for t, key in (doc.get("unshared_at") or {}).items() if t not in add}
    for reader in remove:
        unshared.setdefault(reader, doc["feed_key"])
    if unshared or "unshared_at" in doc:
        doc["unshared_at"] = unshared
    owned = _owned(doc)
    if headline and doc.get("latest_rank", "") < headline["latest_rank"]:
        doc.update({k: v for k, v in headline.items() if k not in owned})
    for version, changed in edits or []:
        if doc.get("latest_version") == version:
            doc.update({k: v for k, v in changed.items() if k not in owned})
    doc.update(fields or {})
    model.models[model_id] = doc
    model.by_name[(team, name)] = model_id


def _owned(doc: Document) -> set[str]:
    return {f for name in doc.get("own_metadata") or [] for f in OWNABLE.get(name, ())}


def headline_of(version: Document) -> dict[str, Any]:
    """The model fields a version sets as the model's latest."""
    return {
        "latest_rank": latest_rank(version["version"]),
        "latest_version": version["version"],
        "framework": version.get("framework"),
        "deployment_targets": list(version.get("deployment_targets") or []),
        "description": version.get("description") or "",
        "tags": dict(version.get("tags") or {}),
        "tag_pairs": tag_pairs(version.get("tags") or {}),
    }


def latest_rank(version: str) -> str:
    """Rank of a version for the headline: stable releases outrank prereleases."""
    stable = semver.Version.parse(version).prerelease is None
    return ("1" if stable else "0") + precedence_key(version)


def tag_pairs(tags: dict[str, str]) -> list[str]:
    """``key:value`` strings, as registration stores them for tag filters."""
    return [f"{k}:{v}" for k, v in tags.items()]


def overall(environments: dict[str, Any]) -> str:
    """The most advanced status across environments, ``registered`` before any report."""
    statuses = [env["status"] for env in environments.values()]
    return max(statuses, key=lambda s: ADVANCEMENT.get(s, 0)) if statuses else "registered"


def _time(value: Any) -> Any:
    """A datetime from the ISO text events carry (documents keep datetimes, as MongoDB returns them)."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return value
    return value


Handler = Callable[[ReadModel, CloudEvent, str], bool]
HANDLERS: dict[str, Handler] = {
    messages.MODEL_VERSION_REGISTERED: _registered,
    messages.MODEL_VERSION_UPDATED: _version_updated,
    messages.VERSION_LIFECYCLE_CHANGED: _lifecycle_changed,
    messages.MODEL_SHARED: _shared,
    messages.MODEL_UNSHARED: _unshared,
    messages.ALIAS_SET: _alias_set,
    messages.ALIAS_REMOVED: _alias_removed,
    messages.VERSION_APPROVAL_CHANGED: _approval_changed,
    messages.MODEL_UPDATED: _model_updated,
    messages.MODEL_VERSION_DELETED: _deleted,
    messages.DEPLOYMENT_STATUS_CHANGED: _status_changed,
    REPORT_RECORDED: _report_recorded,
}
_OWNER = {kind: "d" if kind in (messages.DEPLOYMENT_STATUS_CHANGED, REPORT_RECORDED) else "r" for kind in HANDLERS}
