"""Webhook fan-out: matching events become delivery records; a worker POSTs them, signed, with retries.

Deliveries are records in ``webhook_deliveries`` (at-least-once: created before the event's offset
is committed, idempotent on event id + subscription). Each attempt is claimed with a lease, so a
slow or dead endpoint holds only its own delivery while the worker serves the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from prometheus_client import Counter
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.webhook_targets import TargetRefused, check_target
from shared.envelope import CloudEvent
from shared.mongo import WEBHOOK_DELIVERIES, WEBHOOKS, Document

log = structlog.get_logger(__name__)
DELIVERIES = Counter("registry_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"])


def sign(secret: str, body: bytes) -> str:
    """``X-Registry-Signature`` value: HMAC-SHA256 of the exact body with the subscription secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def fan_out(db: AsyncDatabase[Document], events: list[CloudEvent]) -> int:
    """Create a pending delivery for every active subscription that wants each event."""
    teams = {team for event in events if isinstance(team := event.data.get("team"), str)}
    if not teams:
        return 0
    subscriptions = await db[WEBHOOKS].find({"team": {"$in": sorted(teams)}, "active": True}).to_list()
    now = datetime.now(UTC)
    records = [
        {
            "_id": f"{event.id}:{sub['_id']}",
            "webhook_id": sub["_id"],
            "team": sub["team"],
            "event_id": event.id,
            "event_type": event.type,
            "body": json.dumps(event.to_structured(), separators=(",", ":")),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "lease_until": now,
            "created_at": now,
            "errors": [],
        }
        for event in events
        for sub in subscriptions
        if sub["team"] == event.data.get("team") and (event.type in sub["event_types"] or "*" in sub["event_types"])
    ]
    if not records:
        return 0
    with contextlib.suppress(BulkWriteError):  # redelivered events: their deliveries already exist
        await db[WEBHOOK_DELIVERIES].insert_many(records, ordered=False)
    return len(records)


class DeliveryWorker:
    """Finds due deliveries, claims each with a lease, and POSTs them concurrently."""

    def __init__(self, db: AsyncDatabase[Document], settings: DeployTrackerSettings) -> None:
        self._db, self._settings = db, settings
        self._deliveries, self._webhooks = db[WEBHOOK_DELIVERIES], db[WEBHOOKS]
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Poll for due deliveries until cancelled."""
        async with httpx.AsyncClient(timeout=self._settings.webhook_timeout_seconds, follow_redirects=False) as http:
            while True:
                try:
                    await self._dispatch_due(http)
                except Exception:
                    log.exception("webhook dispatch failed; retrying")
                await asyncio.sleep(self._settings.webhook_poll_seconds)

    async def _dispatch_due(self, http: httpx.AsyncClient) -> None:
        now = datetime.now(UTC)
        due = await self._deliveries.find(
            {"status": "pending", "next_attempt_at": {"$lte": now}}, {"_id": 1, "lease_until": 1}
        ).to_list()
        for candidate in due:
            if candidate["lease_until"] > now or self._slots.locked():
                continue
            lease = now + timedelta(seconds=self._settings.webhook_timeout_seconds + 5)
            claimed = await self._deliveries.find_one_and_update(
                {"_id": candidate["_id"], "status": "pending", "lease_until": {"$lte": now}},
                {"$set": {"lease_until": lease}},
            )
            if claimed is None:
                continue  # another replica took it
            await self._slots.acquire()
            task = asyncio.create_task(self._attempt(http, claimed))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _attempt(self, http: httpx.AsyncClient, delivery: Document) -> None:
        try:
            error = await self._post(http, delivery)
            await self._record(delivery, error)
        except Exception:
            log.exception("recording a webhook attempt failed", delivery=delivery["_id"])
        finally:
            self._slots.release()

    async def _post(self, http: httpx.AsyncClient, delivery: Document) -> str | None:
        subscription = await self._webhooks.find_one({"_id": delivery["webhook_id"]})
        if subscription is None or not subscription.get("active"):
            return "subscription removed or inactive"
        try:
            await check_target(subscription["url"], allow_private=self._settings.allow_private_webhooks)
        except TargetRefused as exc:
            return f"target refused: {exc}"
        body = delivery["body"].encode()
        headers = {
            "content-type": "application/cloudevents+json",
            "x-registry-signature": sign(subscription["secret"], body),
            "x-registry-delivery": delivery["_id"],
            "x-registry-event": delivery["event_type"],
            "user-agent": "model-registry-webhooks/0.1",
        }
        try:
            response = await http.post(subscription["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"

    async def _record(self, delivery: Document, error: str | None) -> None:
        attempts = delivery["attempts"] + 1
        now = datetime.now(UTC)
        changes: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now, "lease_until": now}
        if error is None:
            changes |= {"status": "delivered", "delivered_at": now}
            DELIVERIES.labels("delivered").inc()
        elif attempts >= self._settings.webhook_max_attempts:
            changes |= {"status": "dead", "dead_at": now}  # dead-lettered: visible in …/deliveries
            DELIVERIES.labels("dead").inc()
        else:
            base = self._settings.webhook_backoff_seconds * 2 ** (attempts - 1)
            delay = min(self._settings.webhook_backoff_max_seconds, base) * random.uniform(0.8, 1.2)
            changes["next_attempt_at"] = now + timedelta(seconds=delay)
            DELIVERIES.labels("retry").inc()
        update: dict[str, Any] = {"$set": changes}
        if error is not None:
            update["$push"] = {"errors": {"at": now, "error": error}}
        await self._deliveries.update_one({"_id": delivery["_id"]}, update)
