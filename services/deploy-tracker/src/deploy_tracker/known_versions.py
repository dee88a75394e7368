"""The tracker's own table of versions, kept from registration's events (never from its database).

A report is judged against what the tracker knows of its version: that it exists, its owner, its
approval, whether it was registered with verified provenance, whether it was deleted, and the
deployment state the tracker itself records. That
knowledge comes from three events on ``registry.events`` (only service-signed ones count):
``model_version_registered``, ``version_approval_changed`` and ``model_version_deleted``. At start
the table catches up from registration's event log (``GET /internal/v1/events``, from five minutes
before the highest position it has seen), retrying in the background while registration is away;
a report naming a version the table does not know yet asks registration once for it
(:class:`VersionLookup`), since its registration event may still be on its way; so does a report the
approval gate would refuse (:meth:`VersionLookup.recheck`), since its approval event may be too, and
one the provenance gate would refuse while the row does not know whether the version was signed
(a row made from an approval event, or from a registration event from before provenance).

Events are applied in revision order per version: one older than what a row already holds (the
catch-up overlaps the consumer) changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from deploy_tracker.storage import CURSORS, DEPLOYMENTS, KNOWN_VERSIONS
from deploy_tracker.transitions import overall
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.ids import version_id
from shared.chassis.mongo import insert_new
from shared.chassis.pacing import AtMostEvery
from shared.chassis.settings import CommonSettings
from shared.chassis.verifiers import internal_client, internal_token

log = structlog.get_logger(__name__)

VERSION_EVENTS = frozenset(
    {messages.MODEL_VERSION_REGISTERED, messages.VERSION_APPROVAL_CHANGED, messages.MODEL_VERSION_DELETED}
)
EVENTS_PATH = "/internal/v1/events"
VERSION_PATH = "/internal/v1/versions/{team}/{name}/{version}"
CURSOR_ID = "registration"  # the cursor of registration's event log in ``cursors``
OVERLAP_NS = 300 * 10**9  # the catch-up re-reads five minutes before the highest position seen
CURSOR_SAVE_SECONDS = 2.0  # the cursor is stored at most this often (far inside OVERLAP_NS)
PAGE = 1000


@dataclass(frozen=True)
class Fact:
    """What one registration event says about one version (``fields`` to set; none for a registration)."""

    version_id: str
    identity: Document  # model_id, team, name, version
    fields: Document = field(default_factory=dict)
    revision: int | None = None  # registration's position of the event (absent on older records)
    # What a registration fixes for good (verified provenance): set whatever the row's revision.
    settled: Document = field(default_factory=dict)


def fact_of(event_type: str, data: Mapping[str, Any], at: datetime | str | None, revision: int | None) -> Fact | None:
    """The fact of a version event, or ``None`` for any other event (or one without a version)."""
    if event_type not in VERSION_EVENTS:
        return None
    try:
        team, name, number = str(data["team"]), str(data["name"]), str(data["version"])
        identity = {"model_id": str(data["model_id"]), "team": team, "name": name, "version": number}
    except KeyError:
        return None
    fields: Document = {}
    if event_type == messages.MODEL_VERSION_REGISTERED:
        if "provenance" not in data:  # a registration from before provenance: unknown, asked when it matters
            return Fact(version_id(team, name, number), identity, revision=revision)
        provenance = data["provenance"]
        verified = isinstance(provenance, Mapping) and provenance.get("verified") is True
        return Fact(
            version_id(team, name, number), identity, revision=revision, settled={"provenance_verified": verified}
        )
    if event_type == messages.VERSION_APPROVAL_CHANGED:
        fields["approval"] = {"status": data.get("to"), "by": data.get("by"), "at": at, "comment": data.get("comment")}
    elif event_type == messages.MODEL_VERSION_DELETED:
        fields["deleted"] = True
    return Fact(version_id(team, name, number), identity, fields, revision)


def fact_of_event(event: CloudEvent) -> Fact | None:
    """The fact of a CloudEvent read from ``registry.events``."""
    return fact_of(event.type, event.data, event.time, event.revision)


def fact_of_item(item: Mapping[str, Any]) -> Fact | None:
    """The fact of one event of registration's event log (``GET /internal/v1/events``)."""
    data = item.get("data")
    if not isinstance(data, Mapping):
        return None
    return fact_of(str(item.get("type")), data, item.get("time"), _revision(item.get("revision")))


def _revision(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def new_row(vid: str, identity: Mapping[str, Any]) -> Document:
    """A version the tracker has just learned of: never decided on, never reported."""
    return {
        "_id": vid,
        **identity,
        "approval": None,
        "provenance_verified": None,  # unknown until its registration event (or registration) says
        "deleted": False,
        "environments": {},
        "status": "registered",
        "revision": 0,
    }


def apply_fact(rows: dict[str, Document], fact: Fact) -> None:
    """Apply ``fact`` to ``rows`` in memory, as :meth:`KnownVersions.learn` does in MongoDB."""
    row = rows.setdefault(fact.version_id, new_row(fact.version_id, fact.identity))
    row.update(fact.settled)
    if not fact.fields:
        return
    if fact.revision is None:
        row.update(fact.fields)
    elif fact.revision > row.get("revision", 0):
        row.update(fact.fields, revision=fact.revision)


def row_after(fact: Fact) -> Document:
    """The row ``fact`` makes of a version the table does not hold yet."""
    rows: dict[str, Document] = {}
    apply_fact(rows, fact)
    return rows[fact.version_id]


def row_of_lookup(answer: Mapping[str, Any]) -> Document:
    """The row of a version registration described (``GET /internal/v1/versions/…``)."""
    identity = {k: answer[k] for k in ("model_id", "team", "name", "version")}
    vid = str(answer.get("version_id") or version_id(answer["team"], answer["name"], answer["version"]))
    row = new_row(vid, identity) | {
        "approval": answer.get("approval"),
        "deleted": bool(answer.get("deleted")),
        "provenance_verified": verified if isinstance(verified := answer.get("provenance_verified"), bool) else None,
    }
    # registration's revision of the model when it answered: no older event may undo what it said
    return row | {"revision": revision} if (revision := _revision(answer.get("revision"))) is not None else row


class KnownVersions:
    """The table in MongoDB, and the cursor of registration's event log."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._rows, self._cursors, self._history = db[KNOWN_VERSIONS], db[CURSORS], db[DEPLOYMENTS]
        self._seen, self._cursor_saves = 0, AtMostEvery(CURSOR_SAVE_SECONDS)

    async def restore_deployment_state(self) -> int:
        """Fill an empty table with each reported version's deployment state, from the tracker's own history.

        Before the table existed, that state lived on registration's versions; an upgraded tracker
        starts with an empty table and a full ``deployments``: the last applied report of each
        (version, environment) is where it stands. Owner and approval follow from registration's
        event log (the catch-up reads it from the start). Returns the versions restored.
        """
        if await self._rows.find_one({}, {"_id": 1}) is not None:
            return 0
        rows: dict[str, Document] = {}
        async for report in self._history.find({"outcome": "applied"}).sort("position", 1):
            vid = report.get("version_id")
            if not vid or not report.get("model_id") or not report.get("environment"):
                continue
            identity = {k: report.get(k) for k in ("model_id", "team", "name", "version")}
            row = rows.setdefault(vid, new_row(vid, identity))
            row["environments"][report["environment"]] = {
                "status": report["status"],
                "occurred_at": report["occurred_at"],
                "report_id": report.get("report_id"),
                "target": report.get("target"),
                "updated_at": report["received_at"],
            }
        for row in rows.values():
            row["status"] = overall(row["environments"])
        if rows:
            inserts = [
                UpdateOne({"_id": vid}, {"$setOnInsert": {k: v for k, v in row.items() if k != "_id"}}, upsert=True)
                for vid, row in rows.items()
            ]
            await self._rows.bulk_write(inserts, ordered=False)
        return len(rows)

    async def learn(self, facts: Iterable[Fact]) -> int:
        """Apply ``facts`` in order; return how many there were.

        A version's first fact in the batch is inserted as the row it makes, when the table does
        not hold the version yet (a registration: most facts). An insert of many rows is one
        commit; an upsert is a commit per row in the embedded stand-in, and those were a quarter of
        the shared database server's work for a registration. The rest, and every fact of a version
        the table already holds, are applied as updates after the inserts, in order (a version's
        later facts follow its inserted first one).
        """
        facts = list(facts)
        firsts: dict[str, int] = {}  # version id -> the position of its first fact
        for position, fact in enumerate(facts):
            firsts.setdefault(fact.version_id, position)
        rows = [row_after(facts[position]) for position in firsts.values()]
        refused = set(await insert_new(self._rows, rows))
        inserted = {row["_id"] for index, row in enumerate(rows) if index not in refused}
        updates: list[UpdateOne] = []
        for position, fact in enumerate(facts):
            if fact.version_id in inserted and firsts[fact.version_id] == position:
                continue
            row = new_row(fact.version_id, fact.identity) | fact.settled
            insert = {k: v for k, v in row.items() if k != "_id" and k not in fact.settled}
            change: Document = {"$setOnInsert": insert}
            if fact.settled:
                change["$set"] = fact.settled  # never changes once registered: no revision to compare
            updates.append(UpdateOne({"_id": fact.version_id}, change, upsert=True))
            if not fact.fields:
                continue
            if fact.revision is None:
                updates.append(UpdateOne({"_id": fact.version_id}, {"$set": fact.fields}))
            else:
                newer = {"_id": fact.version_id, "revision": {"$lt": fact.revision}}
                updates.append(UpdateOne(newer, {"$set": {**fact.fields, "revision": fact.revision}}))
        if updates:
            await self._rows.bulk_write(updates, ordered=True)
        return len(facts)

    async def cursor(self) -> int:
        """The highest position of registration's event log seen so far (0: none)."""
        doc = await self._cursors.find_one({"_id": CURSOR_ID})
        return int(doc["position"]) if doc else 0

    async def saw(self, position: int) -> None:
        """Remember ``position`` as seen (the cursor never moves back), stored at most every few seconds.

        A write per event cost every registration one more durable update on the database server.
        A cursor up to :data:`CURSOR_SAVE_SECONDS` behind loses nothing: the catch-up re-reads five
        minutes (:data:`OVERLAP_NS`) before it.
        """
        self._seen = max(self._seen, position)
        if not self._cursor_saves.due():
            return
        await self._cursors.update_one({"_id": CURSOR_ID}, {"$max": {"position": self._seen}}, upsert=True)

    async def learn_events(self, events: Iterable[CloudEvent]) -> int:
        """Apply the version events among ``events`` (consumed from ``registry.events``) and move the cursor."""
        facts = [fact for event in events if (fact := fact_of_event(event)) is not None]
        await self.learn(facts)
        seen = [fact.revision for fact in facts if fact.revision is not None]
        if seen:
            await self.saw(max(seen))
        return len(facts)


class RegistrationUnavailable(ConnectionError):
    """Registration did not answer (unreachable, 5xx, or refused the services' credential)."""


class Registration:
    """Registration's internal routes the tracker reads: its event log and one version."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 2.0,
        ca_file: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = internal_client(base_url, token, timeout=timeout, ca_file=ca_file, transport=transport)

    @classmethod
    def of(cls, settings: CommonSettings, *, timeout: float = 2.0) -> Registration:
        """Registration at ``REGISTRATION_INTERNAL_URL``, with the services' credential."""
        url, token = settings.registration_internal_url, internal_token(settings)
        return cls(url, token, timeout=timeout, ca_file=settings.internal_ca_file)

    async def _get(self, path: str, params: Mapping[str, int] | None = None) -> httpx.Response | None:
        try:
            answer = await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise RegistrationUnavailable(f"registration unreachable: {type(exc).__name__}") from exc
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise RegistrationUnavailable(f"registration answered {answer.status_code} on {path}")
        return answer

    async def events(self, after: int, limit: int = PAGE) -> tuple[list[Document], int | None]:
        """One page of registration's event log after ``after``, and where the next one starts (``None``: the end)."""
        answer = await self._get(EVENTS_PATH, {"after": after, "limit": limit})
        if answer is None:
            raise RegistrationUnavailable("registration serves no event log")
        body = answer.json()
        return list(body.get("items") or []), body.get("next_after")

    async def version(self, team: str, name: str, version: str) -> Document | None:
        """What registration says of one version, or ``None`` when it knows none."""
        parts = {"team": team, "name": name, "version": version}
        path = VERSION_PATH.format(**{k: quote(v, safe="") for k, v in parts.items()})
        answer = await self._get(path)
        return dict(answer.json()) if answer is not None else None

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


class VersionLookup:
    """Asks registration once for a version the table does not know; a miss is remembered a few seconds.

    A version registration does not know (or could not be asked about) is not asked about again
    for ``forget_after`` seconds, so a burst of reports naming it costs one request, not one each.
    """

    def __init__(self, registration: Registration, *, forget_after: float = 5.0, max_misses: int = 10_000) -> None:
        self._registration, self._forget_after, self._max_misses = registration, forget_after, max_misses
        self._misses: OrderedDict[str, float] = OrderedDict()  # version id -> when to ask again (monotonic)

    async def __call__(self, team: str, name: str, version: str) -> Document | None:
        vid = version_id(team, name, version)
        now = time.monotonic()
        if (until := self._misses.get(vid)) is not None and until > now:
            return None
        try:
            answer = await self._registration.version(team, name, version)
        except RegistrationUnavailable as exc:
            log.warning("version lookup failed", version_id=vid, error=str(exc))
            answer = None
        if answer is None:
            self._misses[vid] = now + self._forget_after
            self._misses.move_to_end(vid)
            while len(self._misses) > self._max_misses:
                self._misses.popitem(last=False)
            return None
        self._misses.pop(vid, None)
        return row_of_lookup(answer)

    async def recheck(self, team: str, name: str, version: str) -> Document | None:
        """Ask registration again for a version a gate would refuse (its approval, or whether it was signed).

        Past the miss cache, bounded by the client's timeout; ``None`` when registration does not
        answer or knows no such version (the report is then refused as before).
        """
        try:
            answer = await self._registration.version(team, name, version)
        except RegistrationUnavailable as exc:
            log.warning("approval re-check failed", version_id=version_id(team, name, version), error=str(exc))
            return None
        try:
            return row_of_lookup(answer) if answer is not None else None
        except KeyError:
            return None


class CatchUp:
    """Reads registration's event log into the table at start, retrying while registration is away."""

    def __init__(
        self,
        registration: Registration,
        table: KnownVersions,
        *,
        first_pause: float = 1.0,
        max_pause: float = 30.0,
    ) -> None:
        self._registration, self._table = registration, table
        self._first_pause, self._max_pause = first_pause, max_pause
        self.done = asyncio.Event()

    async def once(self) -> int:
        """Read the log from five minutes before the highest position seen to its end; return events applied."""
        after = max(0, await self._table.cursor() - OVERLAP_NS)
        applied = 0
        while True:
            items, next_after = await self._registration.events(after)
            facts = [fact for item in items if (fact := fact_of_item(item)) is not None]
            await self._table.learn(facts)
            applied += len(facts)
            positions = [p for item in items if (p := _revision(item.get("revision"))) is not None]
            if positions:
                await self._table.saw(max(positions))
            if next_after is None or not items:
                return applied
            after = int(next_after)

    async def run(self) -> None:
        """Catch up once (retrying with back-off), then stay idle until shutdown: the consumer keeps the table."""
        pause = self._first_pause
        while not self.done.is_set():
            try:
                applied = await self.once()
            except (RegistrationUnavailable, ValueError, KeyError, TypeError) as exc:
                log.warning("known versions: catch-up failed, retrying", error=str(exc), pause_seconds=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, self._max_pause)
                continue
            log.info("known versions caught up from registration", events=applied)
            self.done.set()
        await asyncio.Event().wait()  # a background task runs until shutdown
