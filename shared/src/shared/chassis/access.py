"""Access and security events on ``registry.access``: batched, never blocking a request."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict

import structlog
from faststream.kafka import KafkaBroker
from prometheus_client import Counter

from registry_contract import correlation, messages
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from registry_contract.ids import ANONYMOUS
from shared.chassis.publishing import publish_event
from shared.chassis.signing import EventSigner

log = structlog.get_logger(__name__)

AUTH_FAILURES = Counter("registry_auth_failures_total", "Requests or commands with no valid key", ["service", "reason"])
ACCESS_DENIED = Counter("registry_access_denied_total", "Authenticated callers refused", ["service", "team", "reason"])
RATE_LIMITED = Counter("registry_rate_limited_total", "Requests or commands over their key's rate", ["service", "team"])
ACCESS_EVENTS_DROPPED = Counter("registry_access_events_dropped_total", "Access events dropped: queue full")
# How long the first queued event waits for others to share its batch. Published one by one, a
# client's sequential reads cost a produce request each on the broker and a wakeup each in the
# service; an access entry reaching the audit log 0.1 s later changes nothing for anyone.
ACCESS_LINGER_SECONDS = 0.1
ACCESS_BATCH_MAX = 500


class FailureWatch:
    """Logs a warning when one source (key id or address) fails ``threshold`` times in ``window`` s."""

    def __init__(self, *, threshold: int, window: float) -> None:
        self.threshold, self.window = threshold, window
        self._counts: dict[str, list[float]] = defaultdict(list)

    def failed(self, source: str, reason: str) -> None:
        now = time.monotonic()
        recent = [t for t in self._counts[source] if now - t < self.window]
        recent.append(now)
        self._counts[source] = recent
        if len(recent) == self.threshold:
            log.warning(
                "repeated authentication failures",
                source=source,
                failures=len(recent),
                window_seconds=self.window,
                reason=reason,
            )
        if len(self._counts) > 50_000:
            self._counts.clear()


class AccessLog:
    """Queues access events and publishes them in batches from a background task."""

    def __init__(
        self, broker: KafkaBroker, *, topic: str, service: str, signer: EventSigner, max_queue: int = 10_000
    ) -> None:
        self._broker, self._topic, self.service, self._signer = broker, topic, service, signer
        self._queue: asyncio.Queue[CloudEvent] = asyncio.Queue(max_queue)

    def record(
        self,
        event_type: str,
        *,
        principal: Principal | None,
        method: str,
        path: str,
        status: int,
        reason: str | None = None,
        resource_team: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Queue one event; if the queue is full the event is counted as dropped, never awaited."""
        data = messages.AccessRecorded(
            principal=principal.key_id if principal else None,
            team=principal.team if principal else None,
            method=method,
            path=path,
            status=status,
            reason=reason,
            resource_team=resource_team,
            identity=principal.identity.as_record() if principal and principal.identity else None,
        )
        event = CloudEvent(
            source=f"/registry/{self.service}",
            type=event_type,
            subject=principal.team if principal else "anonymous",
            correlation_id=correlation_id or correlation.current() or correlation.new_id(),
            data=data.model_dump(),
        )
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            ACCESS_EVENTS_DROPPED.inc()

    async def run(self) -> None:
        """Publish queued events in batches until cancelled, then flush what is left."""
        batch: list[CloudEvent] = []
        try:
            while True:
                batch.append(await self._queue.get())
                await asyncio.sleep(ACCESS_LINGER_SECONDS)
                while not self._queue.empty() and len(batch) < ACCESS_BATCH_MAX:
                    batch.append(self._queue.get_nowait())
                await self._publish(batch)
                batch = []
        except asyncio.CancelledError:
            # What was taken goes too: at least once (the audit service dedupes on the event id).
            rest = batch
            while not self._queue.empty():
                rest.append(self._queue.get_nowait())
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._publish(rest), 5)
            raise

    async def _publish(self, batch: list[CloudEvent]) -> None:
        if not batch:
            return
        try:
            futures = [
                await publish_event(
                    self._broker, self._signer, event, topic=self._topic, key=event.subject or ANONYMOUS
                )
                for event in batch
            ]
            await asyncio.gather(*futures)
        except Exception:
            log.exception("could not publish access events", events=len(batch))
            await asyncio.sleep(1)
