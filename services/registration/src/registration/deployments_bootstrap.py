"""A first start learns where versions run from the tracker's event log, not from the tracker's database.

``GET <REGISTRATION_DEPLOY_TRACKER_URL>/internal/v1/events?after=<position>`` pages through every
event the tracker published; its ``deployment_status_changed`` events fill ``deployed_environments``
(each environment only over an older revision, so events the subscriber already applied stay).
Progress is noted after each page, so a restart resumes, and a finished bootstrap is not redone.
While the tracker is unreachable the bootstrap is retried in the background; the service serves.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ValidationError

from registration.config import RegistrationSettings
from registration.deployments import DeployedEnvironments, status_seen
from shared.chassis.verifiers import internal_client, internal_token

log = structlog.get_logger(__name__)
EVENTS_PATH = "/internal/v1/events"
PAGE_SIZE = 1000
FIRST_PAUSE, MAX_PAUSE = 0.5, 5.0  # a failed attempt costs one connection: retry often


class TrackerUnavailable(Exception):
    """The tracker's event log could not be read now (unreachable, an error status, a bad page)."""


class _Event(BaseModel):
    type: str
    source: str
    revision: int | None = None
    data: Any = None


class _Page(BaseModel):
    items: list[_Event]
    next_after: int | None = None


class TrackerLog:
    """Reads the tracker's event log with the services' credential."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ca_file: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = internal_client(base_url, token, timeout=timeout, ca_file=ca_file, transport=transport)

    @classmethod
    def of(cls, settings: RegistrationSettings) -> TrackerLog:
        """The log at ``REGISTRATION_DEPLOY_TRACKER_URL``."""
        return cls(settings.deploy_tracker_url, internal_token(settings), ca_file=settings.internal_ca_file)

    async def page(self, after: int, limit: int) -> _Page:
        """The events after position ``after``, at most ``limit``."""
        try:
            answer = await self._client.get(EVENTS_PATH, params={"after": after, "limit": limit})
        except httpx.HTTPError as exc:
            raise TrackerUnavailable(f"the tracker is unreachable: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise TrackerUnavailable(f"the tracker answered {answer.status_code}")
        try:
            return _Page.model_validate_json(answer.content)
        except ValidationError as exc:
            raise TrackerUnavailable(
                f"the tracker's page is not an event log page: {exc.error_count()} errors"
            ) from None

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


async def bootstrap(table: DeployedEnvironments, tracker: TrackerLog, *, page_size: int = PAGE_SIZE) -> int | None:
    """Read the tracker's log from where the last attempt stopped; the status changes applied.

    ``None`` when an earlier start finished the bootstrap already. Raises :class:`TrackerUnavailable`.
    """
    mark = await table.bootstrap_mark()
    if mark is not None and mark.get("done"):
        return None
    after = int(mark["after"]) if mark is not None else 0
    applied = 0
    while True:
        page = await tracker.page(after, page_size)
        seen = [s for e in page.items if (s := status_seen(e.type, e.source, e.data, e.revision)) is not None]
        await table.record(seen)
        applied += len(seen)
        # Either convention ends the walk: no next page named, or an empty page.
        if not page.items or page.next_after is None or page.next_after <= after:
            break
        after = page.next_after
        await table.mark_bootstrap(after=after, done=False)
    await table.mark_bootstrap(after=after, done=True)
    return applied


async def keep_bootstrapping(table: DeployedEnvironments, tracker: TrackerLog) -> None:
    """Bootstrap, retrying with back-off while the tracker is away; then stay idle until shutdown."""
    pause = FIRST_PAUSE
    while True:
        try:
            applied = await bootstrap(table, tracker)
        except TrackerUnavailable as exc:
            log.warning("the tracker's event log is unavailable; bootstrap retried", error=str(exc), retry_in=pause)
            await asyncio.sleep(pause)
            pause = min(MAX_PAUSE, pause * 2)
            continue
        if applied is not None:
            log.info("deployments bootstrapped from the tracker's event log", status_changes=applied)
        break
    await asyncio.Event().wait()  # a background task that returns is restarted: this one is done
