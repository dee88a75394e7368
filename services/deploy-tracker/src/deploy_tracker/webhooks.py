"""Webhook fan-out and delivery: matching events become delivery records; a worker POSTs them, signed, with retries.

Deliveries are records in ``webhook_deliveries`` (at-least-once: created before the event's offset
is committed, idempotent on event id + subscription). The process that creates a delivery queues
it in memory and schedules its retries with timers, so MongoDB is not polled on the hot path (the
stand-in reads every matching document on each query). A slow scan every ``recovery_seconds``
picks up deliveries whose process died. Each attempt is claimed with a lease, so a slow or dead
endpoint holds only its own delivery, and each team has its own share of the concurrency, so one
team's slow endpoints cannot starve another team's deliveries.

Signatures follow Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` — one signature per valid
secret while a rotated-out secret is still honoured. Receivers refuse timestamps outside their
replay window (5 minutes in the reference libraries) and remember ids they have seen.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from deploy_tracker import metrics
from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.secret_box import SecretBox
from deploy_tracker.storage import WEBHOOK_DELIVERIES, WEBHOOKS
from deploy_tracker.webhook_fanout import deliveries, teams_of
from deploy_tracker.webhook_secrets import signature_header, valid_secrets
from deploy_tracker.webhook_targets import Resolver, TargetRefused, system_resolver, vet
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent

log = structlog.get_logger(__name__)
Queued = tuple[str, str]  # (delivery id, team)


async def fan_out(db: AsyncDatabase[Document], events: list[CloudEvent]) -> list[Queued]:
    """Create a pending delivery for every active subscription that wants each event; return new ones."""
    teams = teams_of(events)
    if not teams:
        return []
    subscriptions = await db[WEBHOOKS].find({"team": {"$in": teams}, "active": True}).to_list()
    records = deliveries(events, subscriptions, datetime.now(UTC))
    if not records:
        return []
    try:
        await db[WEBHOOK_DELIVERIES].insert_many(records, ordered=False)
    except BulkWriteError as exc:  # redelivered events: those deliveries already exist
        failed = {error["index"] for error in exc.details.get("writeErrors", [])}
        return [(record["_id"], record["team"]) for index, record in enumerate(records) if index not in failed]
    return [(record["_id"], record["team"]) for record in records]


class DeliveryWorker:
    """Delivers queued deliveries concurrently; each is claimed with a lease before its attempt."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        settings: DeployTrackerSettings,
        *,
        box: SecretBox,
        resolver: Resolver | None = None,
    ) -> None:
        self._db, self._settings, self._box = db, settings, box
        self._deliveries, self._webhooks = db[WEBHOOK_DELIVERIES], db[WEBHOOKS]
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._team_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.webhook_team_concurrency)
        )
        self._resolver = resolver or functools.partial(system_resolver, timeout=settings.webhook_dns_timeout_seconds)
        self._queue: asyncio.Queue[Queued] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, deliveries: list[Queued]) -> None:
        """Deliver these soon (called after fan-out committed them)."""
        for delivery in deliveries:
            self._queue.put_nowait(delivery)

    async def run(self) -> None:
        """Deliver until cancelled; recover orphaned deliveries now and then."""
        recovery = asyncio.create_task(self._recover_forever())
        try:
            # No keep-alive: each attempt connects to the address vetted for it, never to a pooled one.
            limits = httpx.Limits(max_keepalive_connections=0)
            timeout = self._settings.webhook_timeout_seconds
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, limits=limits) as http:
                while True:
                    delivery_id, team = await self._queue.get()
                    task = asyncio.create_task(self._claim_and_attempt(http, delivery_id, team))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            # In-flight attempts stop with the worker; their leases expire and recovery retries them.
            for task in [recovery, *self._tasks]:
                task.cancel()

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
            {"status": "pending", "next_attempt_at": {"$lte": now - grace}}, {"_id": 1, "lease_until": 1, "team": 1}
        ).to_list()
        overdue = [(doc["_id"], doc["team"]) for doc in docs if doc["lease_until"] <= now]
        self.enqueue(overdue)
        return len(overdue)

    async def _claim_and_attempt(self, http: httpx.AsyncClient, delivery_id: str, team: str) -> None:
        # The team's slot first: waiting for it holds none of the slots other teams need.
        async with self._team_slots[team], self._slots:
            try:
                now = datetime.now(UTC)
                lease = now + timedelta(seconds=self._settings.webhook_timeout_seconds + 5)
                # A conditional update takes the lease, then the delivery is read: findAndModify
                # scans the whole collection on the embedded stand-in (120 ms at 20,000 deliveries,
                # against 1.3 ms for this update), and the read after it changes nothing on MongoDB:
                # only the holder of the lease writes to the delivery.
                claimed = await self._deliveries.update_one(
                    {"_id": delivery_id, "status": "pending", "lease_until": {"$lte": now}},
                    {"$set": {"lease_until": lease}},
                )
                delivery = await self._deliveries.find_one({"_id": delivery_id}) if claimed.modified_count else None
                if delivery is not None:  # None: delivered, dead, or taken by another replica
                    await self._attempt(http, delivery)
            except Exception:
                log.exception("webhook attempt failed", delivery=delivery_id)

    async def _attempt(self, http: httpx.AsyncClient, delivery: Document) -> None:
        subscription = await self._webhooks.find_one({"_id": delivery["webhook_id"]})
        error = await self._post(http, delivery, subscription)
        limit = (subscription or {}).get("max_attempts") or self._settings.webhook_max_attempts
        retry_in = await self._record(delivery, error, max_attempts=limit)
        if retry_in is not None:
            queued = (delivery["_id"], delivery["team"])
            asyncio.get_running_loop().call_later(retry_in, self._queue.put_nowait, queued)

    async def _post(self, http: httpx.AsyncClient, delivery: Document, subscription: Document | None) -> str | None:
        """POST one delivery; ``None`` on a 2xx, else a coarse error category.

        Categories say what kind of failure it was, never the low-level error or the status
        line: the deliveries API must not turn into a scanner of what answers where.
        """
        if subscription is None or not subscription.get("active"):
            return "subscription_removed"
        try:
            target = await vet(
                subscription["url"], allow_private=self._settings.allow_private_webhooks, resolver=self._resolver
            )
        except TargetRefused:
            return "target_refused"
        body = delivery["body"].encode()
        now = datetime.now(UTC)
        # Sealed under a key no longer listed (secret_box.reseal_all logged it): sign with the
        # secrets that still open, so a rotation recovers at once; fail only if none does.
        signing = self._box.open_each(valid_secrets(subscription, now))
        if not signing:
            return "secret_unreadable"
        headers = {
            "host": target.host_header,
            "content-type": "application/cloudevents+json",
            "webhook-id": delivery["_id"],
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(signing, delivery["_id"], now, body),
            "x-registry-event": delivery["event_type"],
            "user-agent": "model-registry-webhooks/0.1",
        }
        try:
            response = await http.post(
                target.url, content=body, headers=headers, extensions={"sni_hostname": target.hostname}
            )
        except httpx.TimeoutException:
            return "timeout"
        except httpx.ConnectError as exc:
            return "tls_failed" if isinstance(exc.__cause__ or exc.__context__, ssl.SSLError) else "connection_failed"
        except httpx.HTTPError:
            return "protocol_error"
        return None if 200 <= response.status_code < 300 else f"http_{response.status_code // 100}xx"

    async def _record(self, delivery: Document, error: str | None, *, max_attempts: int) -> float | None:
        """Store the attempt's result; return the seconds until a retry, if one is due."""
        attempts = delivery["attempts"] + 1
        now = datetime.now(UTC)
        changes: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now, "lease_until": now}
        retry_in: float | None = None
        if error is None:
            changes |= {"status": "delivered", "delivered_at": now}
            metrics.DELIVERIES.labels("delivered").inc()
        elif attempts >= max_attempts:
            changes |= {"status": "dead", "dead_at": now}  # dead-lettered: visible in …/deliveries
            metrics.DELIVERIES.labels("dead").inc()
        else:
            base = self._settings.webhook_backoff_seconds * 2 ** (attempts - 1)
            # Jitter spreads retries of many deliveries that failed together.
            retry_in = min(self._settings.webhook_backoff_max_seconds, base) * random.uniform(0.8, 1.2)
            changes["next_attempt_at"] = now + timedelta(seconds=retry_in)
            metrics.DELIVERIES.labels("retry").inc()
        update: dict[str, Any] = {"$set": changes}
        if error is not None:
            update["$push"] = {"errors": {"at": now, "error": error}}
        await self._deliveries.update_one({"_id": delivery["_id"]}, update)
        return retry_in
