"""Webhook fan-out: matching events become delivery records; a worker POSTs them, signed, with retries.

Deliveries are records in ``webhook_deliveries`` (at-least-once: created before the event's offset
is committed, idempotent on event id + subscription). The process that creates a delivery queues
it in memory and schedules its retries with timers, so MongoDB is not polled on the hot path (the
stand-in reads every matching document on each query). A slow scan every ``recovery_seconds``
picks up deliveries whose process died. Each attempt is claimed with a lease, so a slow or dead
endpoint holds only its own delivery while the worker serves the others.
"""

from __future__ import annotations

import asyncio
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


async def fan_out(db: AsyncDatabase[Document], events: list[CloudEvent]) -> list[str]:
    """Create a pending delivery for every active subscription that wants each event; return new ids."""
    teams = {team for event in events if isinstance(team := event.data.get("team"), str)}
    if not teams:
        return []
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
        return []
    try:
        await db[WEBHOOK_DELIVERIES].insert_many(records, ordered=False)
    except BulkWriteError as exc:  # redelivered events: those deliveries already exist
        failed = {error["index"] for error in exc.details.get("writeErrors", [])}
        return [record["_id"] for index, record in enumerate(records) if index not in failed]
    return [record["_id"] for record in records]


class DeliveryWorker:
    """Delivers queued deliveries concurrently; each is claimed with a lease before its attempt."""

    def __init__(self, db: AsyncDatabase[Document], settings: DeployTrackerSettings) -> None:
        self._db, self._settings = db, settings
        self._deliveries, self._webhooks = db[WEBHOOK_DELIVERIES], db[WEBHOOKS]
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, delivery_ids: list[str]) -> None:
        """Deliver these soon (called after fan-out committed them)."""
        for delivery_id in delivery_ids:
            self._queue.put_nowait(delivery_id)

    async def run(self) -> None:
        """Deliver until cancelled; recover orphaned deliveries now and then."""
        recovery = asyncio.create_task(self._recover_forever())
        try:
            async with httpx.AsyncClient(
                timeout=self._settings.webhook_timeout_seconds, follow_redirects=False
            ) as http:
                while True:
                    delivery_id = await self._queue.get()
                    await self._slots.acquire()
                    task = asyncio.create_task(self._claim_and_attempt(http, delivery_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            recovery.cancel()

    async def _recover_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.webhook_recovery_seconds)
            try:
                await self.recover()
            except Exception:
                log.exception("webhook recovery scan failed")

    async def recover(self) -> int:
        """Queue pending deliveries that are overdue and unleased: their process died or restarted."""
        now = datetime.now(UTC)
        grace = timedelta(seconds=self._settings.webhook_timeout_seconds + 10)
        docs = await self._deliveries.find(
            {"status": "pending", "next_attempt_at": {"$lte": now - grace}}, {"_id": 1, "lease_until": 1}
        ).to_list()
        overdue = [doc["_id"] for doc in docs if doc["lease_until"] <= now]
        self.enqueue(overdue)
        return len(overdue)

    async def _claim_and_attempt(self, http: httpx.AsyncClient, delivery_id: str) -> None:
        try:
            now = datetime.now(UTC)
            lease = now + timedelta(seconds=self._settings.webhook_timeout_seconds + 5)
            delivery = await self._deliveries.find_one_and_update(
                {"_id": delivery_id, "status": "pending", "lease_until": {"$lte": now}},
                {"$set": {"lease_until": lease}},
            )
            if delivery is not None:  # None: delivered, dead, or taken by another replica
                await self._attempt(http, delivery)
        except Exception:
            log.exception("webhook attempt failed", delivery=delivery_id)
        finally:
            self._slots.release()

    async def _attempt(self, http: httpx.AsyncClient, delivery: Document) -> None:
        subscription = await self._webhooks.find_one({"_id": delivery["webhook_id"]})
        error = await self._post(http, delivery, subscription)
        limit = (subscription or {}).get("max_attempts") or self._settings.webhook_max_attempts
        retry_in = await self._record(delivery, error, max_attempts=limit)
        if retry_in is not None:
            asyncio.get_running_loop().call_later(retry_in, self._queue.put_nowait, delivery["_id"])

    async def _post(self, http: httpx.AsyncClient, delivery: Document, subscription: Document | None) -> str | None:
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

    async def _record(self, delivery: Document, error: str | None, *, max_attempts: int) -> float | None:
        """Store the attempt's result; return the seconds until a retry, if one is due."""
        attempts = delivery["attempts"] + 1
        now = datetime.now(UTC)
        changes: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now, "lease_until": now}
        retry_in: float | None = None
        if error is None:
            changes |= {"status": "delivered", "delivered_at": now}
            DELIVERIES.labels("delivered").inc()
        elif attempts >= max_attempts:
            changes |= {"status": "dead", "dead_at": now}  # dead-lettered: visible in …/deliveries
            DELIVERIES.labels("dead").inc()
        else:
            base = self._settings.webhook_backoff_seconds * 2 ** (attempts - 1)
            # Jitter spreads retries of many deliveries that failed together.
            retry_in = min(self._settings.webhook_backoff_max_seconds, base) * random.uniform(0.8, 1.2)
            changes["next_attempt_at"] = now + timedelta(seconds=retry_in)
            DELIVERIES.labels("retry").inc()
        update: dict[str, Any] = {"$set": changes}
        if error is not None:
            update["$push"] = {"errors": {"at": now, "error": error}}
        await self._deliveries.update_one({"_id": delivery["_id"]}, update)
        return retry_in
