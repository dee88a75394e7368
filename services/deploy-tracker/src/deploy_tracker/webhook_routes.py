"""``/v1/teams/{team}/webhooks``: subscriptions (``team:admin``) and their deliveries."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.webhook_secrets import new_secret
from deploy_tracker.webhook_targets import TargetRefused, check_target
from shared import catalog, messages
from shared.auth import Principal
from shared.http_auth import Guard
from shared.http_params import IdPath, SlugPath
from shared.mongo import WEBHOOK_DELIVERIES, WEBHOOKS, Document
from shared.problems import Problem

EVENT_TYPES = sorted(set(messages.EVENT_MODELS) - {messages.DEPLOY_STATUS_REPORTED} | {"*"})
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _public(doc: Document) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "team": doc["team"],
        "url": doc["url"],
        "event_types": doc["event_types"],
        "active": doc["active"],
        "description": doc.get("description", ""),
        "created_at": _iso(doc["created_at"]),
        "previous_secret_expires_at": _iso(doc.get("previous_secret_expires_at")),
    }


class SecretRotation(BaseModel):
    """How long the secret being replaced keeps signing deliveries (default: the service's overlap)."""

    model_config = ConfigDict(extra="forbid")

    previous_valid_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] | None = None


def _delivery(doc: Document) -> dict[str, Any]:
    keep = ("event_id", "event_type", "status", "attempts", "next_attempt_at", "delivered_at", "dead_at", "errors")
    return {"id": doc["_id"], **{k: doc.get(k) for k in keep}}


def build_webhook_router(*, db: AsyncDatabase[Document], guard: Guard, settings: DeployTrackerSettings) -> APIRouter:
    """Manage a team's webhooks; a secret is returned once, at creation or rotation."""
    allow_private = settings.allow_private_webhooks
    router = APIRouter(prefix="/v1/teams/{team}/webhooks", tags=["webhooks"])
    Admin = Annotated[Principal, Depends(guard.requiring("team:admin"))]

    def for_team(request: Request, caller: Principal, team: str) -> None:
        if not caller.acts_for(team):
            guard.deny(request, caller, status=403, reason="other team's webhooks", resource_team=team)
            raise Problem(
                403, "Forbidden", f"this key cannot manage team {team!r}", type_="urn:registry:problem:forbidden"
            )

    async def owned(team: str, webhook_id: str) -> Document:
        doc = await db[WEBHOOKS].find_one({"_id": webhook_id, "team": team})
        if doc is None:
            raise Problem(
                404, "Not found", f"team {team!r} has no webhook {webhook_id!r}", type_="urn:registry:problem:not_found"
            )
        return doc

    @router.post("", status_code=201)
    async def create(team: SlugPath, body: WebhookCreate, caller: Admin, request: Request) -> dict[str, Any]:
        """Subscribe; the response's ``secret`` signs every delivery and is not shown again."""
        for_team(request, caller, team)
        try:
            await check_target(body.url, allow_private=allow_private)
        except TargetRefused as exc:
            raise Problem(422, "Invalid webhook URL", str(exc), type_="urn:registry:problem:invalid") from None
        doc = {
            "_id": f"wh_{uuid.uuid4().hex[:16]}",
            "team": team,
            **body.model_dump(),
            "secret": new_secret(),
            "created_at": datetime.now(UTC),
            "created_by": caller.key_id,
        }
        await db[WEBHOOKS].insert_one(doc)
        return {**_public(doc), "secret": doc["secret"]}

    @router.get("")
    async def list_webhooks(team: SlugPath, caller: Admin, request: Request) -> dict[str, Any]:
        """The team's subscriptions (no secrets)."""
        for_team(request, caller, team)
        return {"items": [_public(d) for d in await db[WEBHOOKS].find({"team": team}).to_list()]}

    @router.delete("/{webhook_id}", status_code=204)
    async def delete(team: SlugPath, webhook_id: IdPath, caller: Admin, request: Request) -> None:
        """Remove a subscription; pending deliveries stop."""
        for_team(request, caller, team)
        await owned(team, webhook_id)
        await db[WEBHOOKS].delete_one({"_id": webhook_id})

    @router.post("/{webhook_id}/secret")
    async def rotate_secret(
        team: SlugPath, webhook_id: IdPath, caller: Admin, request: Request, body: SecretRotation | None = None
    ) -> dict[str, Any]:
        """Replace the signing secret; the old one keeps signing (beside the new) for the overlap."""
        for_team(request, caller, team)
        doc = await owned(team, webhook_id)
        overlap = body.previous_valid_seconds if body and body.previous_valid_seconds is not None else None
        seconds = settings.webhook_secret_overlap_seconds if overlap is None else overlap
        changes = {
            "secret": new_secret(),
            "previous_secret": doc["secret"],
            "previous_secret_expires_at": datetime.now(UTC) + timedelta(seconds=seconds),
        }
        await db[WEBHOOKS].update_one({"_id": webhook_id, "team": team}, {"$set": changes})
        return {**_public(doc | changes), "secret": changes["secret"]}

    @router.get("/{webhook_id}/deliveries")
    async def deliveries(
        team: SlugPath,
        webhook_id: IdPath,
        caller: Admin,
        request: Request,
        status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
        limit: Annotated[int, Query(ge=1, le=catalog.MAX_PAGE_SIZE)] = catalog.DEFAULT_PAGE_SIZE,
    ) -> dict[str, Any]:
        """Recent deliveries, newest first, with attempts and errors; ``dead`` ones are dead-lettered."""
        for_team(request, caller, team)
        await owned(team, webhook_id)
        query: dict[str, Any] = {"webhook_id": webhook_id, **({"status": status} if status else {})}
        docs = await db[WEBHOOK_DELIVERIES].find(query, {"body": 0}).sort("created_at", -1).limit(limit).to_list()
        return {"items": [_delivery(d) for d in docs]}

    return router
