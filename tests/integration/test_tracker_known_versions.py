"""The tracker knows versions from registration's events and API only, over the real broker and database.

Registration runs in-process with its own database; the tracker has another, and reaches
registration only through ``REGISTRATION_INTERNAL_URL``: a real loopback HTTP server that passes the
key routes on to registration and answers registration's event log and version routes (issue 23)
as each test sets them. Reports are signed Kafka records, as pipelines send them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deploy_tracker.app import build_app as build_tracker
from deploy_tracker.config import DeployTrackerSettings
from deploy_tracker.known_versions import CURSOR_ID, OVERLAP_NS, KnownVersions, fact_of
from deploy_tracker.storage import CURSORS, DEPLOYMENTS, INDEXES, KNOWN_VERSIONS
from registration.app import build_app as build_registration
from registration.config import RegistrationSettings
from registry_contract import messages
from registry_contract.ids import model_id, version_id
from shared.chassis.kafka import ensure_topics
from shared.chassis.verifiers import INTERNAL_TOKEN_HEADER, internal_token
from tests.factories import ADMIN_KEY, binary_record, command_event, register_event, store_admin_key
from tests.infra import Infra
from tests.integration.restarting import QUICK_RESTARTS, shared_settings
from tests.kafka_tools import publish_raw
from tests.waiting import serving, until

pytestmark = [pytest.mark.integration, pytest.mark.own_stack]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}


@dataclass
class FakeRegistrationLog:
    """What the loopback server answers on registration's known-versions routes, and what it was asked."""

    events: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    failures_left: int = 0  # answer the event log with 503 this many times first
    asked: list[str] = field(default_factory=list)
    tokens: set[str | None] = field(default_factory=set)


@dataclass
class Stack:
    registration: RegistrationSettings
    tracker: DeployTrackerSettings
    fake: FakeRegistrationLog
    tracker_db: AsyncDatabase[dict[str, Any]]
    http: httpx.AsyncClient | None = None  # the running tracker


@pytest.fixture
async def stack(infra: Infra, db_name: str) -> AsyncIterator[Stack]:
    common = shared_settings(infra, db_name)
    registration = RegistrationSettings(**common, consumer_group=f"reg-{uuid.uuid4().hex[:8]}")
    registration = registration.model_copy(update={"relay_interval_seconds": 0.05})
    await ensure_topics(registration, partitions=1)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    await store_admin_key(client[db_name], signing_key=infra.signing_key)
    tracker_db_name = f"{db_name}_tracker"
    group = f"tracker-{uuid.uuid4().hex[:8]}"
    tracker = DeployTrackerSettings(
        **common
        | {
            "mongodb_database": tracker_db_name,
            "consumer_group": group,
            "webhook_group": f"{group}-w",
            "versions_group": f"{group}-v",
            "webhook_secret_keys": Fernet.generate_key().decode(),
            "approval_environments": ["prod"],
            "version_lookup_timeout_seconds": 30,  # the loopback server and registration share a loaded loop
        }
    )
    try:
        yield Stack(registration, tracker, FakeRegistrationLog(), client[tracker_db_name])
    finally:
        await client.drop_database(tracker_db_name)
        await client.close()


@contextlib.asynccontextmanager
async def running_registration(settings: RegistrationSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_registration(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registration", headers=ADMIN) as http:
            yield http


@contextlib.asynccontextmanager
async def loopback(registration: httpx.AsyncClient, fake: FakeRegistrationLog) -> AsyncIterator[str]:
    """A real HTTP server standing for registration's internal address; yields its URL."""

    async def keys(request: Request) -> Response:  # the key routes: registration's own answer
        fake.tokens.add(request.headers.get(INTERNAL_TOKEN_HEADER))
        answer = await registration.request(
            request.method,
            request.url.path,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() not in {"host", "authorization"}},
        )
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    async def events(request: Request) -> Response:
        fake.tokens.add(request.headers.get(INTERNAL_TOKEN_HEADER))
        fake.asked.append(str(request.url.path) + "?" + str(request.url.query))
        if fake.failures_left > 0:
            fake.failures_left -= 1
            return JSONResponse({"title": "unavailable"}, status_code=503)
        after, limit = int(request.query_params.get("after", 0)), int(request.query_params.get("limit", 1000))
        items = [e for e in fake.events if e["revision"] > after][:limit]
        return JSONResponse({"items": items, "next_after": items[-1]["revision"] if len(items) == limit else None})

    async def version(request: Request) -> Response:
        fake.tokens.add(request.headers.get(INTERNAL_TOKEN_HEADER))
        p = request.path_params
        fake.asked.append(str(request.url.path))
        found = fake.versions.get((p["team"], p["name"], p["version"]))
        return JSONResponse(found) if found else JSONResponse({"title": "not found"}, status_code=404)

    routes = [
        Route("/internal/v1/events", events),
        Route("/internal/v1/versions/{team}/{name}/{version}", version),
        Route("/internal/v1/keys/{rest:path}", keys, methods=["GET", "POST"]),
    ]
    async with serving(routes) as port:
        yield f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def running_tracker(stack: Stack, url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = stack.tracker.model_copy(update={"registration_internal_url": url, **QUICK_RESTARTS})
    app = build_tracker(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tracker", headers=ADMIN) as http:
            yield http


async def report(stack: Stack, team: str, name: str, status: str, *, environment: str = "staging") -> str:
    """Publish a signed report; return its id."""
    data = {"team": team, "name": name, "version": "1.0.0", "environment": environment, "status": status}
    event = command_event(
        messages.DEPLOY_STATUS_REPORTED,
        data | {"occurred_at": datetime.now(UTC).isoformat()},
        token=ADMIN_KEY.token,
    )
    value, headers = binary_record(event)
    await publish_raw(stack.tracker.kafka_bootstrap_servers, stack.tracker.topic_deploy, [(value, headers, b"k")])
    return event.id


async def outcome_of(stack: Stack, report_id: str) -> dict[str, Any]:
    async def recorded() -> dict[str, Any] | None:
        return await stack.tracker_db[DEPLOYMENTS].find_one({"report_id": report_id})

    return await until(recorded, timeout=30, what=f"report {report_id} recorded")


def logged_registration(team: str, name: str, revision: int) -> dict[str, Any]:
    data = {
        "model_id": model_id(team, name),
        "team": team,
        "name": name,
        "version": "1.0.0",
        "framework": "sklearn",
        "artifact_uri": "s3://b/m",
        "lifecycle": "active",
        "status": "registered",
    }
    return {
        "id": uuid.uuid4().hex,
        "type": messages.MODEL_VERSION_REGISTERED,
        "source": "/registry/registration",
        "time": datetime.now(UTC).isoformat(),
        "subject": f"{team}/{name}",
        "correlation_id": uuid.uuid4().hex,
        "causation_id": None,
        "revision": revision,
        "data": data,
    }


class TestKnownVersions:
    async def test_a_version_registered_over_kafka_becomes_known_and_takes_reports(
        self, stack: Stack, unique: str
    ) -> None:
        name = f"m-{unique}"
        async with (
            running_registration(stack.registration) as registration,
            loopback(registration, stack.fake) as url,
            running_tracker(stack, url),
        ):
            command = register_event("fraud", name, token=ADMIN_KEY.token)
            value, headers = binary_record(command)
            topic = stack.registration.topic_commands
            await publish_raw(stack.registration.kafka_bootstrap_servers, topic, [(value, headers, b"fraud/x")])
            vid = version_id("fraud", name, "1.0.0")

            async def known() -> dict[str, Any] | None:
                return await stack.tracker_db[KNOWN_VERSIONS].find_one({"_id": vid})

            row = await until(known, timeout=30, what="the version known to the tracker")
            assert (row["team"], row["model_id"], row["deleted"], row["status"]) == (
                "fraud",
                model_id("fraud", name),
                False,
                "registered",
            )
            recorded = await outcome_of(stack, await report(stack, "fraud", name, "deployed"))
            assert recorded["outcome"] == "applied"
            assert not any("/versions/" in asked for asked in stack.fake.asked)  # known from the event
            after = await known()
            assert after is not None and (after["status"], after["environments"]["staging"]["status"]) == (
                "deployed",
                "deployed",
            )
            # Pending approval: prod is gated by what the tracker learned, not by registration's documents.
            refused = await outcome_of(stack, await report(stack, "fraud", name, "deploying", environment="prod"))
            assert (refused["outcome"], refused["reason"]) == ("rejected", "not_approved")
        names = set(await stack.tracker_db.list_collection_names())
        assert names <= set(INDEXES) and KNOWN_VERSIONS in names
        assert internal_token(stack.tracker) in stack.fake.tokens

    async def test_a_version_the_tracker_does_not_know_is_asked_of_registration_once(
        self, stack: Stack, unique: str
    ) -> None:
        name = f"m-{unique}"
        stack.fake.versions[("fraud", name, "1.0.0")] = {
            "model_id": model_id("fraud", name),
            "version_id": version_id("fraud", name, "1.0.0"),
            "team": "fraud",
            "name": name,
            "version": "1.0.0",
            "approval": {"status": "approved", "by": "k1", "at": datetime.now(UTC).isoformat(), "comment": None},
            "deleted": False,
        }
        async with (
            running_registration(stack.registration) as registration,
            loopback(registration, stack.fake) as url,
            running_tracker(stack, url),
        ):
            recorded = await outcome_of(stack, await report(stack, "fraud", name, "deploying", environment="prod"))
            assert recorded["outcome"] == "applied"  # approved, as registration said
            unknown = await outcome_of(stack, await report(stack, "fraud", f"{name}-nope", "deploying"))
            assert (unknown["outcome"], unknown["reason"]) == ("rejected", "not_found")
            again = await outcome_of(stack, await report(stack, "fraud", name, "deployed", environment="prod"))
            assert again["outcome"] == "applied"
        lookups = [asked for asked in stack.fake.asked if asked.startswith("/internal/v1/versions/")]
        assert lookups == [
            f"/internal/v1/versions/fraud/{name}/1.0.0",
            f"/internal/v1/versions/fraud/{name}-nope/1.0.0",
        ]
        row = await stack.tracker_db[KNOWN_VERSIONS].find_one({"_id": version_id("fraud", name, "1.0.0")})
        assert row is not None and (row["approval"]["status"], row["status"]) == ("approved", "deployed")

    async def test_an_approval_registration_confirms_before_its_event_arrives_lets_the_report_through(
        self, stack: Stack, unique: str
    ) -> None:
        # Approve, then deploy to prod at once: the report may overtake the approval event.
        name, first, approved_at = f"m-{unique}", 1_800_000_000_000_000_000, 1_800_000_000_000_000_050
        vid = version_id("fraud", name, "1.0.0")
        stack.fake.events = [logged_registration("fraud", name, first)]  # registered; the approval not delivered
        stack.fake.versions[("fraud", name, "1.0.0")] = {
            "model_id": model_id("fraud", name),
            "version_id": vid,
            "team": "fraud",
            "name": name,
            "version": "1.0.0",
            "approval": {"status": "approved", "by": "k1", "at": datetime.now(UTC).isoformat(), "comment": None},
            "deleted": False,
            "revision": approved_at,
        }
        async with (
            running_registration(stack.registration) as registration,
            loopback(registration, stack.fake) as url,
            running_tracker(stack, url),
        ):

            async def known() -> dict[str, Any] | None:
                return await stack.tracker_db[KNOWN_VERSIONS].find_one({"_id": vid, "revision": {"$gte": 0}})

            row = await until(known, timeout=30, what="the version known from the catch-up")
            assert row["approval"] is None  # pending, as far as the tracker's events go
            recorded = await outcome_of(stack, await report(stack, "fraud", name, "deploying", environment="prod"))
            assert recorded["outcome"] == "applied", recorded
        assert stack.fake.asked.count(f"/internal/v1/versions/fraud/{name}/1.0.0") == 1  # re-checked once
        kept = await stack.tracker_db[KNOWN_VERSIONS].find_one({"_id": vid})
        assert kept is not None and (kept["approval"]["status"], kept["revision"]) == ("approved", approved_at)
        # An older event arriving late does not undo what registration said.
        older = {"model_id": model_id("fraud", name), "team": "fraud", "name": name, "version": "1.0.0"}
        late = fact_of(messages.VERSION_APPROVAL_CHANGED, older | {"to": "pending"}, None, approved_at - 1)
        assert late is not None
        await KnownVersions(stack.tracker_db).learn([late])
        still = await stack.tracker_db[KNOWN_VERSIONS].find_one({"_id": vid})
        assert still is not None and still["approval"]["status"] == "approved"

    async def test_at_start_it_catches_up_from_registrations_log_retrying_while_it_is_away(
        self, stack: Stack, unique: str
    ) -> None:
        name, first = f"m-{unique}", 1_800_000_000_000_000_000
        stack.fake.events = [logged_registration("fraud", name, first)]
        stack.fake.failures_left = 2
        async with (
            running_registration(stack.registration) as registration,
            loopback(registration, stack.fake) as url,
        ):
            async with running_tracker(stack, url):

                async def caught_up() -> dict[str, Any] | None:
                    return await stack.tracker_db[CURSORS].find_one({"_id": CURSOR_ID, "position": first})

                await until(caught_up, timeout=30, what="the cursor at registration's newest event")
                recorded = await outcome_of(stack, await report(stack, "fraud", name, "deployed"))
                assert recorded["outcome"] == "applied"
            assert stack.fake.asked[:3] == ["/internal/v1/events?after=0&limit=1000"] * 3  # two 503s, then served
            stack.fake.asked.clear()
            async with running_tracker(stack, url):  # a restart reads from five minutes before what it saw

                async def asked_again() -> bool:
                    return bool(stack.fake.asked)

                await until(asked_again, timeout=30, what="the catch-up after the restart")
            assert stack.fake.asked[0] == f"/internal/v1/events?after={first - OVERLAP_NS}&limit=1000"


class TestWhatTheTrackerServes:
    async def test_the_bridges_answer_names_the_revision_its_event_log_serves(self, stack: Stack, unique: str) -> None:
        name = f"m-{unique}"
        stack.fake.versions[("fraud", name, "1.0.0")] = {
            "model_id": model_id("fraud", name),
            "version_id": version_id("fraud", name, "1.0.0"),
            "team": "fraud",
            "name": name,
            "version": "1.0.0",
            "approval": None,
            "deleted": False,
        }
        body = {"team": "fraud", "name": name, "version": "1.0.0", "environment": "staging", "status": "deployed"}
        body["occurred_at"] = datetime.now(UTC).isoformat()
        async with (
            running_registration(stack.registration) as registration,
            loopback(registration, stack.fake) as url,
            running_tracker(stack, url) as tracker,
        ):
            answer = await tracker.post("/v1/deployments/events", json=body, headers={"Prefer": "wait=20"})
            assert answer.status_code == 200, answer.text
            owner, model, revision = answer.headers["X-Registry-Consistency"].split(".")
            assert (owner, model) == ("d", model_id("fraud", name))

            service = {INTERNAL_TOKEN_HEADER: internal_token(stack.tracker)}
            served = await tracker.get("/internal/v1/events", params={"after": 0}, headers=service)
            assert served.status_code == 200, served.text
            items = [item for item in served.json()["items"] if item["data"].get("name") == name]
            assert [item["type"] for item in items] == [
                messages.DEPLOYMENT_REPORT_RECORDED,
                messages.DEPLOYMENT_STATUS_CHANGED,
            ]
            assert items[-1]["revision"] == int(revision)
            assert items[1]["data"]["environment_state"]["status"] == "deployed"
            assert served.json()["next_after"] is None
            paged = await tracker.get("/internal/v1/events", params={"after": 0, "limit": 1}, headers=service)
            assert paged.json()["next_after"] == paged.json()["items"][0]["revision"]

            as_admin = await tracker.get("/internal/v1/events", params={"after": items[0]["revision"]})
            assert [item["id"] for item in as_admin.json()["items"]] == [items[1]["id"]]
            anonymous = await tracker.get("/internal/v1/events", headers={"Authorization": ""})
            wrong = await tracker.get("/internal/v1/events", headers={INTERNAL_TOKEN_HEADER: "not-it"})
            made = await registration.post("/v1/teams/fraud/api-keys", json={"name": "p", "scopes": ["models:read"]})
            assert made.status_code == 201, made.text
            team_key = {"Authorization": f"Bearer {made.json()['token']}"}
            not_admin = await tracker.get("/internal/v1/events", headers=team_key)
            assert (anonymous.status_code, wrong.status_code, not_admin.status_code) == (401, 401, 403)
            assert "/internal/v1/events" not in (await tracker.get("/openapi.json")).json()["paths"]


def applied(key: str, position: int, environment: str, status: str, *, version: str = "1.0.0") -> dict[str, Any]:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        "_id": key,
        "report_id": key,
        "outcome": "applied",
        "position": position,
        "received_at": at,
        "occurred_at": at,
        "model_id": model_id("fraud", "card"),
        "version_id": version_id("fraud", "card", version),
        "team": "fraud",
        "name": "card",
        "version": version,
        "environment": environment,
        "status": status,
        "target": None,
    }


class TestUpgrade:
    async def test_an_empty_table_takes_each_versions_deployment_state_from_the_trackers_history(
        self, mongo_database: AsyncDatabase[dict[str, Any]]
    ) -> None:
        # Before the table, that state lived on registration's versions: an upgrade must not lose it.
        await mongo_database[DEPLOYMENTS].insert_many(
            [
                applied("r1", 1, "prod", "deploying"),
                applied("r2", 2, "prod", "deployed"),
                applied("r3", 3, "staging", "failed"),
                applied("r4", 4, "dev", "deployed", version="2.0.0") | {"outcome": "out_of_order"},
            ]
        )
        table = KnownVersions(mongo_database)
        assert await table.restore_deployment_state() == 1
        row = await mongo_database[KNOWN_VERSIONS].find_one({"_id": version_id("fraud", "card", "1.0.0")})
        assert row is not None
        assert (row["status"], row["environments"]["prod"]["status"], row["environments"]["prod"]["report_id"]) == (
            "deployed",
            "deployed",
            "r2",
        )
        assert (row["environments"]["staging"]["status"], row["team"], row["approval"]) == ("failed", "fraud", None)
        assert await mongo_database[KNOWN_VERSIONS].count_documents({}) == 1  # out of order: no state
        await mongo_database[DEPLOYMENTS].insert_one(applied("r5", 5, "prod", "retired"))
        assert await table.restore_deployment_state() == 0  # once: a table that knows versions is kept
