"""The read model follows registry.events, resumes from what it persisted, and catches up from the owners' logs."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from query.projection.consumer import Projection
from query.projection.model import ReadModel
from query.projection.owners import OwnerLog
from query.projection.storage import PROJECTION_STATE, MongoProjectionStore
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from shared.chassis.kafka import ensure_topics
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import EventSigner
from tests.infra import Infra, private_topics
from tests.kafka_tools import publish_raw
from tests.unit.test_projection_apply import TRACKER, Log
from tests.waiting import serving, until

pytestmark = pytest.mark.integration
TOKEN = "owner-token-" + uuid.uuid4().hex


def projection(settings: CommonSettings, db: AsyncDatabase[dict[str, Any]], owners: list[OwnerLog]) -> Projection:
    return Projection(ReadModel(), MongoProjectionStore(db), owners, settings=settings, flush_seconds=0.05)


@asynccontextmanager
async def running(projection: Projection) -> AsyncIterator[Projection]:
    task = asyncio.create_task(projection.run())
    try:
        await until(lambda: _started(projection, task), timeout=30, what="the projection loaded and caught up")
        yield projection
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _started(projection: Projection, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # raises what stopped it
    return projection.started.is_set()


async def publish(infra: Infra, settings: CommonSettings, events: list[CloudEvent], *, signer: EventSigner) -> None:
    records = []
    for event in events:
        value, headers = signer.encode(event)
        key = (event.subject or "").encode()
        records.append((value, [(name, raw.encode()) for name, raw in headers.items()], key))
    await publish_raw(infra.kafka_bootstrap, settings.topic_events, records)


async def topic(infra: Infra) -> CommonSettings:
    settings = private_topics(infra, f"proj-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, partitions=2)
    return settings


async def test_signed_events_are_projected_and_unsigned_ones_are_not(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings, log, forged = await topic(infra), Log(), Log()
    signer = EventSigner(infra.signing_key.encode())
    async with running(projection(settings, mongo_database, [])) as following:
        await publish(infra, settings, [forged.register("1.0.0")], signer=EventSigner(b"not-the-services-key" * 2))
        await publish(infra, settings, [log.register("1.0.0"), log.register("1.1.0")], signer=signer)

        async def projected() -> bool:
            return len(following.model.sorted_versions(log.model_id)) == 2

        await until(projected, what="both versions projected")
        assert following.model.model_by_name(forged.team, forged.name) is None, "an unsigned record counts for nothing"
        assert following.model.models[log.model_id]["latest_version"] == "1.1.0"


async def test_a_restart_resumes_from_the_persisted_model_without_replaying(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings, log = await topic(infra), Log()
    signer = EventSigner(infra.signing_key.encode())
    await publish(infra, settings, [log.register(f"1.{n}.0") for n in range(3)], signer=signer)
    async with running(projection(settings, mongo_database, [])) as first:

        async def persisted() -> bool:
            state = await mongo_database[PROJECTION_STATE].find_one({})
            return first.applied == 3 and state is not None and sum(state["offsets"].values()) == 3

        await until(persisted, what="three events applied and persisted")
    async with running(projection(settings, mongo_database, [])) as second:
        assert len(second.model.sorted_versions(log.model_id)) == 3, "loaded from the query's database"
        await publish(infra, settings, [log.register("2.0.0")], signer=signer)

        async def sentinel() -> bool:
            return bool(second.model.models[log.model_id]["latest_version"] == "2.0.0")

        await until(sentinel, what="the event after the restart applied")
        assert second.applied == 1, "the three events before the restart were not applied again"


def owner_app(events: list[CloudEvent], asked: list[int]) -> list[Route]:
    async def page(request: Request) -> JSONResponse:
        if request.headers.get("x-registry-service-token") != TOKEN:
            return JSONResponse({"title": "Unauthenticated"}, status_code=401)
        after, limit = int(request.query_params["after"]), int(request.query_params["limit"])
        asked.append(after)
        found = [e for e in events if e.revision is not None and e.revision > after][: min(limit, 2)]
        items = [e.model_dump(mode="json", exclude={"authorization"}) for e in found]
        return JSONResponse({"items": items, "next_after": found[-1].revision if found else None})

    return [Route("/internal/v1/events", page)]


def owner_away_while(away: dict[str, bool], events: list[CloudEvent]) -> list[Route]:
    """An owner's event log of ``events`` that answers 503 while ``away["on"]``."""
    serve = owner_app(events, [])[0].endpoint

    async def page(request: Request) -> JSONResponse:
        if away["on"]:
            return JSONResponse({"title": "Service unavailable"}, status_code=503)
        answer: JSONResponse = await serve(request)
        return answer

    return [Route("/internal/v1/events", page)]


async def test_offsets_beyond_the_end_of_a_lost_log_are_caught_up_from_the_owner_then_the_topic_read_anew(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings, log = await topic(infra), Log()
    signer = EventSigner(infra.signing_key.encode())
    first_events = [log.register("1.0.0"), log.register("1.1.0")]
    await publish(infra, settings, first_events, signer=signer)
    async with running(projection(settings, mongo_database, [])) as first:

        async def persisted() -> bool:
            state = await mongo_database[PROJECTION_STATE].find_one({})
            return state is not None and sum(state["offsets"].values()) == 2

        await until(persisted, what="the first events persisted with their offsets")
    # The stack stops with one event published but never projected, and its broker forgets the log.
    unprojected = log.register("1.2.0")
    lost_log = await topic(infra)
    asked: list[int] = []
    async with serving(owner_app(log.events, asked)) as port:
        owner = OwnerLog("r", f"http://127.0.0.1:{port}", TOKEN)
        async with running(projection(lost_log, mongo_database, [owner])) as second:
            assert second.model.version(log.vid(unprojected.data["version"])) is not None, "caught up before ready"
            assert second.applied == 1, "only the event the projection had not applied"
            await publish(infra, lost_log, [log.register("2.0.0")], signer=signer)

            async def read_anew() -> bool:
                return bool(second.model.models[log.model_id]["latest_version"] == "2.0.0")

            await until(read_anew, what="the new log read from its beginning")
    assert asked[0] == 0 and len(asked) >= 2, "paged from the start of the margin"
    assert first.applied == 2


async def test_a_rebuild_replaces_the_model_and_its_persisted_state_with_the_owners_logs(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings, log, stale = await topic(infra), Log(), Log()
    signer = EventSigner(infra.signing_key.encode())
    await publish(infra, settings, [stale.register("1.0.0")], signer=signer)  # known here, not to the owner
    owned = [log.register("1.0.0"), log.register("1.1.0")]
    asked: list[int] = []
    async with serving(owner_app([], asked)) as down, serving(owner_app(owned, asked)) as up:
        unreachable = OwnerLog("r", f"http://127.0.0.1:{down}", "wrong-token")
        async with running(projection(settings, mongo_database, [unreachable])) as following:
            await until(lambda: _has(following, stale.model_id), what="the topic's event applied")
        rebuilding = projection(settings, mongo_database, [OwnerLog("r", f"http://127.0.0.1:{up}", TOKEN)])
        async with running(rebuilding) as following:
            rebuilt = await following.rebuild()
            assert (rebuilt.models, rebuilt.versions, rebuilt.events) == (1, 2, {"r": 2})
            assert set(following.model.models) == {log.model_id}
    loaded, _ = await MongoProjectionStore(mongo_database).load()
    assert set(loaded.models) == {log.model_id} and loaded.version_count() == 2


async def _has(projection: Projection, model_id: str) -> bool:
    return model_id in projection.model.models


async def test_an_owner_unreachable_at_start_is_asked_again_until_it_answers(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings, log = await topic(infra), Log()
    missed = [log.register("1.0.0")]  # published before this replica existed, on a log since lost
    away = {"on": True}
    async with serving(owner_away_while(away, missed)) as port:
        owner = OwnerLog("r", f"http://127.0.0.1:{port}", TOKEN)
        async with running(projection(settings, mongo_database, [owner])) as following:
            assert following.model.models == {}, "ready once the first attempt is over, without the owner"
            await publish(infra, settings, [log.register("1.1.0")], signer=EventSigner(infra.signing_key.encode()))
            await until(lambda: _has(following, log.model_id), what="the topic followed while the owner is away")
            away["on"] = False

            async def caught_up() -> bool:
                return len(following.model.sorted_versions(log.model_id)) == 2

            await until(caught_up, what="the owner's log read once it answered")
            assert REGISTRY.get_sample_value("registry_projection_lag_seconds") == 0.0


def staged(log: Log, version: str, *, revision: int | None = None) -> CloudEvent:
    """The tracker's status change of ``version`` to ``deploying`` in staging (at ``revision``, if given)."""
    state = {"status": "deploying", "report_id": f"r-{version}", "updated_at": log.clock.isoformat()}
    data = {"version": version, "environment": "staging", "status": "deploying", "environment_state": state}
    event = log.emit(messages.DEPLOYMENT_STATUS_CHANGED, data | {"overall_status": "deploying"}, source=TRACKER)
    return event if revision is None else event.model_copy(update={"revision": revision})


async def test_the_trackers_log_is_read_only_after_registrations_whatever_the_topic_brought_meanwhile(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]]
) -> None:
    """Registration's log away, the tracker's up: the tracker's report of a version only registration's
    log holds is read once registration answers, from the revision loaded, not from what the topic
    brought meanwhile (a report far newer, of a version the topic registered)."""
    settings, log = await topic(infra), Log()
    missed = [log.register("1.0.0")]  # on a log since lost: only registration's event log has it
    reports = [staged(log, "1.0.0")]
    an_hour_later = (reports[0].revision or 0) + 3_600 * 10**9  # past the catch-up's 5-minute margin
    on_the_topic = [log.register("2.0.0"), staged(log, "2.0.0", revision=an_hour_later)]
    away, asked = {"on": True}, list[int]()
    async with (
        serving(owner_away_while(away, [*missed, on_the_topic[0]])) as r_port,
        serving(owner_app(reports, asked)) as d_port,
    ):
        owners = [OwnerLog(src, f"http://127.0.0.1:{port}", TOKEN) for src, port in (("r", r_port), ("d", d_port))]
        async with running(projection(settings, mongo_database, owners)) as following:
            await publish(infra, settings, on_the_topic, signer=EventSigner(infra.signing_key.encode()))

            async def deploying(version: str) -> bool:
                found = following.model.version(log.vid(version))
                return found is not None and found.get("status") == "deploying"

            await until(lambda: deploying("2.0.0"), what="the topic's report applied while registration is away")
            assert asked == [], "the tracker's log is not read before registration's"
            away["on"] = False
            await until(lambda: deploying("1.0.0"), what="the report of the version caught up")
            assert asked[0] == 0, "read from the revision loaded, not the one the topic reached"


@pytest.mark.parametrize("linger_ms", [2000, 0])
async def test_a_trickle_of_events_is_fetched_in_as_few_batches_as_the_linger_allows(
    infra: Infra, mongo_database: AsyncDatabase[dict[str, Any]], linger_ms: int
) -> None:
    """Lingering, the broker answers a trickle a few events at a time: fewer fetches, fewer rounds of applying."""
    settings, log = await topic(infra), Log()
    signer = EventSigner(infra.signing_key.encode())
    following = Projection(
        ReadModel(),
        MongoProjectionStore(mongo_database),
        [],
        settings=settings,
        flush_seconds=0.05,
        linger_ms=linger_ms,
    )
    rounds: list[set[str]] = []
    following.model.subscribe(rounds.append)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with running(following):
            await asyncio.sleep(1.0)  # the consumer is assigned its partitions and fetching
            for minor in range(6):  # a trickle: 0.5 s from the first event to the last, one model's partition
                value, headers = signer.encode(log.register(f"1.{minor}.0"))
                encoded = [(name, raw.encode()) for name, raw in headers.items()]
                await producer.send_and_wait(settings.topic_events, value, key=log.model_id.encode(), headers=encoded)
                await asyncio.sleep(0.1)

            async def projected() -> bool:
                return len(following.model.sorted_versions(log.model_id)) == 6

            await until(projected, what="the six versions projected")
    finally:
        await producer.stop()
    if linger_ms:
        assert 1 <= len(rounds) <= 2, rounds  # held for the rest of the trickle (two if a fetch was already out)
    else:
        assert len(rounds) >= 3, rounds  # the control: without a linger the trickle arrives in several fetches
