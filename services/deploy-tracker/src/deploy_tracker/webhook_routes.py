"""``/v1/teams/{team}/webhooks``: subscriptions (``team:admin``) and their deliveries."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.secret_box import SecretBox
from deploy_tracker.storage import WEBHOOK_DELIVERIES, WEBHOOKS
from deploy_tracker.webhook_events import webhook_event
from deploy_tracker.webhook_secrets import new_secret
from deploy_tracker.webhook_targets import PrivateTarget, TargetRefused, check_target
from registry_contract import catalog, messages
from registry_contract.admin_views import (
    WebhookCreated,
    WebhookDeliveryList,
    WebhookDeliveryPublic,
    WebhookList,
    WebhookPublic,
)
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.identity_events import (
    IDENTITY_EVENT_MODELS,
    WEBHOOK_CREATED,
    WEBHOOK_DELETED,
    WEBHOOK_SECRET_ROTATED,
)
from shared.chassis.http_auth import administers_team
from shared.chassis.http_params import IdPath, SlugPath
from shared.chassis.problems import Problem, documented, keyed_route_refusals
from shared.outbox.changes import ChangeLog

# Key and webhook changes go to the audit log only, never to a webhook (webhook_fanout.wants).
_UNSUBSCRIBABLE = {messages.DEPLOY_STATUS_REPORTED, *IDENTITY_EVENT_MODELS}
EVENT_TYPES = sorted(set(messages.EVENT_MODELS) - _UNSUBSCRIBABLE | {"*"})
_EVENT_PATTERN = "^(" + "|".join(re.escape(t) for t in EVENT_TYPES) + ")$"
EventType = Annotated[str, StringConstraints(pattern=_EVENT_PATTERN)]


class WebhookCreate(BaseModel):
    """A subscription: where to POST and which event types (``*`` for all of the team's)."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))]
    active: bool = True
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    max_attempts: Annotated[int, Field(ge=1, le=50)] | None = None  # default: DEPLOY_TRACKER_WEBHOOK_MAX_ATTEMPTS


class SecretRotation(BaseModel):
    """How long the secret being replaced keeps signing deliveries (default: the service's overlap)."""

    model_config = ConfigDict(extra="forbid")

    previous_valid_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] | None = None


async def _settings(request: Request) -> DeployTrackerSettings:
    settings: DeployTrackerSettings = request.app.state.settings
    return settings


async def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


async def _webhooks(request: Request) -> AsyncCollection[Document]:
    db: AsyncDatabase[Document] = request.app.state.db
    return db[WEBHOOKS]


async def _changes(request: Request) -> ChangeLog:
    changes: ChangeLog = request.app.state.changes
    return changes


async def _deliveries(request: Request) -> AsyncCollection[Document]:
    db: AsyncDatabase[Document] = request.app.state.db
    return db[WEBHOOK_DELIVERIES]


Settings = Annotated[DeployTrackerSettings, Depends(_settings)]
Webhooks = Annotated[AsyncCollection[Document], Depends(_webhooks)]
Box = Annotated[SecretBox, Depends(_box)]
Deliveries = Annotated[AsyncCollection[Document], Depends(_deliveries)]
Changes = Annotated[ChangeLog, Depends(_changes)]
TeamAdmin = Annotated[Principal, Depends(administers_team("webhooks"))]


async def _owned(team: SlugPath, webhook_id: IdPath, _: TeamAdmin, webhooks: Webhooks) -> Document:
    """The team's webhook ``webhook_id``, or the not-found problem."""
    doc = await webhooks.find_one({"_id": webhook_id, "team": team})
    if doc is None:
        raise Problem("not_found", f"team {team!r} has no webhook {webhook_id!r}")
    return doc


Owned = Annotated[Document, Depends(_owned)]
NOT_FOUND = documented("not_found")
router = APIRouter(
    prefix="/v1/teams/{team}/webhooks",
    tags=["webhooks"],
    responses=keyed_route_refusals("invalid"),
)


@router.post("", status_code=201)
async def create(
    team: SlugPath,
    body: WebhookCreate,
    caller: TeamAdmin,
    webhooks: Webhooks,
    settings: Settings,
    box: Box,
    changes: Changes,
) -> WebhookCreated:
    """Subscribe; the response's ``secret`` signs every delivery and is not shown again.

    The subscription and its ``webhook_created`` event (without the secret) commit together. A URL
    whose host has a private, loopback or other non-public address is refused 422 ``invalid``
    unless ``DEPLOY_TRACKER_ALLOW_PRIVATE_WEBHOOKS`` is true; the refusal names that setting.
    """
    try:
        await check_target(body.url, allow_private=settings.allow_private_webhooks)
    except PrivateTarget as exc:
        allow = f"{DeployTrackerSettings.env_name('allow_private_webhooks')}=true"
        raise Problem("invalid", f"{exc}; the deploy-tracker setting {allow} allows private targets") from None
    except TargetRefused as exc:
        raise Problem("invalid", str(exc)) from None
    secret = new_secret()
    doc = {
        "_id": f"wh_{uuid.uuid4().hex[:16]}",
        "team": team,
        **body.model_dump(),
        "secret": box.seal(secret),
        "created_at": datetime.now(UTC),
        "created_by": caller.key_id,
    }

    async def insert(session: AsyncClientSession) -> None:
        await webhooks.insert_one(doc, session=session)

    await changes.commit([webhook_event(doc, WEBHOOK_CREATED, actor=caller)], insert)
    return WebhookCreated.of(doc | {"secret": secret})


@router.get("")
async def list_webhooks(team: SlugPath, _: TeamAdmin, webhooks: Webhooks) -> WebhookList:
    """The team's subscriptions (no secrets)."""
    return WebhookList(items=[WebhookPublic.of(doc) for doc in await webhooks.find({"team": team}).to_list()])


@router.delete("/{webhook_id}", status_code=204, responses=NOT_FOUND)
async def delete(webhook: Owned, caller: TeamAdmin, webhooks: Webhooks, changes: Changes) -> None:
    """Remove a subscription; pending deliveries stop; ``webhook_deleted`` tells the audit log."""

    async def remove(session: AsyncClientSession) -> None:
        await webhooks.delete_one({"_id": webhook["_id"]}, session=session)

    await changes.commit([webhook_event(webhook, WEBHOOK_DELETED, actor=caller)], remove)


@router.post("/{webhook_id}/secret", responses=NOT_FOUND)
async def rotate_secret(
    webhook: Owned,
    caller: TeamAdmin,
    webhooks: Webhooks,
    settings: Settings,
    box: Box,
    changes: Changes,
    body: SecretRotation | None = None,
) -> WebhookCreated:
    """Replace the signing secret; the old one keeps signing (beside the new) for the overlap.

    ``webhook_secret_rotated`` (the overlap, never a secret) commits with the new secret.
    """
    overlap = body.previous_valid_seconds if body else None
    seconds = settings.webhook_secret_overlap_seconds if overlap is None else overlap
    secret = new_secret()
    fields: dict[str, Any] = {"secret": box.seal(secret)}
    if box.open_each([webhook["secret"]]):  # an unreadable one (its key dropped) is not kept signing
        fields |= {
            "previous_secret": webhook["secret"],  # still sealed, as stored
            "previous_secret_expires_at": datetime.now(UTC) + timedelta(seconds=seconds),
        }
    else:
        fields |= {"previous_secret": None, "previous_secret_expires_at": None}

    async def rekey(session: AsyncClientSession) -> None:
        await webhooks.update_one({"_id": webhook["_id"], "team": webhook["team"]}, {"$set": fields}, session=session)

    kept = round(seconds) if fields["previous_secret"] else 0
    event = webhook_event(webhook, WEBHOOK_SECRET_ROTATED, actor=caller, previous_valid_seconds=kept)
    await changes.commit([event], rekey)
    return WebhookCreated.of(webhook | fields | {"secret": secret})


@router.get("/{webhook_id}/deliveries", responses=NOT_FOUND)
async def deliveries(
    webhook: Owned,
    collection: Deliveries,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
    limit: Annotated[int, Query(ge=1, le=catalog.MAX_PAGE_SIZE)] = catalog.DEFAULT_PAGE_SIZE,
) -> WebhookDeliveryList:
    """Recent deliveries, newest first, with attempts and errors; ``dead`` ones are dead-lettered."""
    query: dict[str, Any] = {"webhook_id": webhook["_id"], **({"status": status} if status else {})}
    docs = await collection.find(query, {"body": 0}).sort("created_at", -1).limit(limit).to_list()
    return WebhookDeliveryList(items=[WebhookDeliveryPublic.of(doc) for doc in docs])
