"""API keys announced on ``registry.events``: created and revoked, each once, never with a secret.

A key's events have ids derived from the key and the change, so a change is announced once
however many paths announce it: the HTTP routes in the transaction that records it, and at start
(:func:`announce_unannounced`) for keys written to the collection directly (the bootstrap key of
``registry up`` and of the init job, written before any service runs) or whose route crashed
between storing the key and announcing it. ``announced`` on a key lists what was announced.
"""

from __future__ import annotations

import uuid

import structlog
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from registration.batch import SOURCE
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.identity_events import API_KEY_CREATED, API_KEY_REVOKED, ApiKeyChanged
from shared.outbox.changes import AlreadyAnnounced, ChangeLog, Write

log = structlog.get_logger(__name__)
_IDS = uuid.UUID("5f0c8a2e-8d3b-4a53-9d7e-6a1f0b7c2e41")  # namespace of key event ids
CHANGES = {API_KEY_CREATED: "created", API_KEY_REVOKED: "revoked"}


def event_id(key_id: str, event_type: str) -> str:
    """The one id of ``event_type`` for key ``key_id``: whoever announces it, it is announced once."""
    return uuid.uuid5(_IDS, f"{event_type}:{key_id}").hex


def key_event(record: Document, event_type: str, *, actor: Principal | None, late: bool = False) -> CloudEvent:
    """The event of ``event_type`` for the stored key ``record``: its public fields and who acted."""
    # Announced late, a creation names who wrote the key; who revoked one outside the API is unknown.
    writer = record.get("created_by") if event_type == API_KEY_CREATED else None
    data = ApiKeyChanged(
        team=record["team"],
        actor=actor.key_id if actor else writer,
        actor_team=actor.team if actor else None,
        key_id=record["_id"],
        key_name=record.get("name"),
        scopes=list(record.get("scopes") or ()),
        expires_at=record.get("expires_at"),
        announced_late=late,
    )
    return CloudEvent(
        id=event_id(record["_id"], event_type),
        source=SOURCE,
        type=event_type,
        data=data.model_dump(mode="json"),
    )


def mark_announced(keys: AsyncCollection[Document], changed: list[tuple[str, str]]) -> Write:
    """The write that notes on each key that its change (key id, event type) was announced."""

    async def write(session: AsyncClientSession) -> None:
        notes = [UpdateOne({"_id": key_id}, {"$addToSet": {"announced": CHANGES[t]}}) for key_id, t in changed]
        await keys.bulk_write(notes, session=session)

    return write


async def announce(
    changes: ChangeLog, keys: AsyncCollection[Document], record: Document, event_type: str, *, actor: Principal | None
) -> None:
    """Announce a change already stored (a key just issued); nothing if it was announced meanwhile."""
    event = key_event(record, event_type, actor=actor, late=actor is None)
    try:
        await changes.commit([event], mark_announced(keys, [(record["_id"], event_type)]))
    except AlreadyAnnounced:  # announced meanwhile, by the same id: note it, or every start tries again
        await keys.update_one({"_id": record["_id"]}, {"$addToSet": {"announced": CHANGES[event_type]}})


async def announce_unannounced(changes: ChangeLog, keys: AsyncCollection[Document], *, chunk: int = 100) -> int:
    """Announce what was done to keys without an event (written directly, or a crash in between).

    In transactions of ``chunk`` events (the first start after an upgrade announces every key); a
    chunk another replica announced part of meanwhile is announced again one event at a time.
    """
    todo: list[tuple[Document, str]] = []
    pending = {"$or": [{"announced": {"$ne": "created"}}, {"revoked": True, "announced": {"$ne": "revoked"}}]}
    async for record in keys.find(pending):
        done = set(record.get("announced") or ())
        todo += [
            (record, event_type)
            for event_type, change in CHANGES.items()
            if change not in done and (event_type == API_KEY_CREATED or record.get("revoked"))
        ]
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        events = [key_event(record, event_type, actor=None, late=True) for record, event_type in part]
        try:
            await changes.commit(events, mark_announced(keys, [(r["_id"], event_type) for r, event_type in part]))
        except AlreadyAnnounced:
            for record, event_type in part:
                await announce(changes, keys, record, event_type, actor=None)
    if todo:
        log.info("announced key changes made without an event", events=len(todo))
    return len(todo)
