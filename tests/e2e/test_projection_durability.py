"""The query service's projection, black box on stacks of their own: killed mid-burst, rebuilt from
nothing, without its databases, behind a broker that forgot its topics, and read-your-writes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from query.projection.storage import CHECKPOINT_ID, PROJECTION_STATE
from query.projection.storage import COLLECTIONS as PROJECTION_COLLECTIONS
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.http_tools import register, team_key
from tests.kafka_tools import Collector, header, publish_raw
from tests.metrics_tools import scrape, total
from tests.private_stack import first_ok, kill, pause, private_settings, private_stack, start_again
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.own_stack]
COMMANDS, EVENTS = "registry.commands", "registry.events"
APPLIED = "registry_projection_applied_events_total"
CONSISTENCY = "X-Registry-Consistency"
REGISTRY = str(Path(sys.executable).with_name("registry"))
FEED = "/v1/assistant/documents"  # read as the reader team: only the model shared with it


def client(stack: EmbeddedStack, service: str, token: str = ADMIN_KEY.token) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.url(service), headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def stored_offsets(stack: EmbeddedStack) -> int:
    """The topic offsets the query service has persisted with its read model (its checkpoint), summed."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri)
    try:
        state = await mongo[service_database("query")][PROJECTION_STATE].find_one({"_id": CHECKPOINT_ID})
    finally:
        await mongo.close()
    return sum((state or {}).get("offsets", {}).values())


async def applied(stack: EmbeddedStack) -> float:
    """Events the query service's projection applied since its process started."""
    samples, _ = await scrape(stack.url("query"))
    return total(samples, APPLIED)


def registered_for(team: str) -> Any:
    """Matches ``model_version_registered`` events of ``team``'s models."""

    def matches(record: Any) -> bool:
        if header(record, "ce_type") != messages.MODEL_VERSION_REGISTERED:
            return False
        return bool(json.loads(record.value).get("team") == team)

    return matches


# --- 1. killed in the middle of a burst -------------------------------------------------------


async def every_version_listed(query: httpx.AsyncClient, team: str, versions: list[tuple[str, str]]) -> None:
    """Wait until each model's version list holds (at least) its versions among ``versions``."""
    for name in sorted({name for name, _ in versions}):
        expected = {v for n, v in versions if n == name}

        async def listed(name: str = name, expected: set[str] = expected) -> bool:
            try:
                page = await query.get(f"/v1/models/{team}/{name}/versions", params={"limit": 200})
            except httpx.TransportError:  # (re)starting
                return False
            return page.status_code == 200 and expected <= {v["version"] for v in page.json()["items"]}

        await until(listed, timeout=60, what=f"{len(expected)} versions of {team}/{name} listed", interval=0.1)


async def test_query_killed_mid_burst_resumes(tmp_path: Path) -> None:
    team, models, per_model = f"burst-{uuid.uuid4().hex[:6]}", 10, 30
    versions = [(f"m{i % models}", f"1.{i // models}.0") for i in range(models * per_model)]
    commands = [register_event(team, name, version, token=ADMIN_KEY.token) for name, version in versions]
    records = [(*binary_record(command), f"{team}/{command.data['name']}".encode()) for command in commands]
    half = len(records) // 2
    async with private_stack(private_settings(tmp_path / "data")) as stack, client(stack, "query") as query:
        bootstrap = stack.settings.kafka_bootstrap
        async with Collector(bootstrap, EVENTS) as events:
            # The first half is projected and, the projection writing behind as it goes, partly
            # stored (QUERY_PROJECTION_FLUSH_SECONDS) ...
            stored_before = await stored_offsets(stack)
            await publish_raw(bootstrap, COMMANDS, records[:half])
            await every_version_listed(query, team, versions[:half])

            async def stored_more() -> bool:
                return await stored_offsets(stack) > stored_before

            await until(stored_more, timeout=30, what="a checkpoint stored past the first events", interval=0.2)
            # ... then the query service dies as the second half starts.
            burst = asyncio.create_task(publish_raw(bootstrap, COMMANDS, records[half:]))
            await kill(stack, "query")
            await burst
            # The rest is registered and published while it is down.
            await events.wait_for(registered_for(team), count=len(versions), timeout=120)
            await start_again(stack, "query")
            await every_version_listed(query, team, versions)
            for name, version in versions:
                read = await query.get(f"/v1/models/{team}/{name}/versions/{version}")
                assert read.status_code == 200, (name, version, read.text)
            for name in sorted({name for name, _ in versions}):  # each registration in the history once
                history = (await query.get(f"/v1/models/{team}/{name}/history", params={"limit": 200})).json()
                ids = [event["event_id"] for event in history["items"]]
                assert len(ids) == len(set(ids)) == per_model, (name, len(ids), len(set(ids)))
            published = len(events.records)  # every event on the private stack's registry.events
        after_restart = await applied(stack)
    # It applied every event it missed and resumed from what it had stored (it persists behind
    # what it applies, so not necessarily all of the first half), not from the start of the log.
    assert len(versions) - half <= after_restart < published, (after_restart, published)


# --- a catalogue of reads, for the rebuild and the outage ------------------------------------


@dataclass
class Catalogue:
    """A team's models written through every kind of write, and a team they are shared with."""

    team: str
    reader: str
    reader_key: str


async def write_catalogue(stack: EmbeddedStack) -> Catalogue:
    """Versions, prereleases, lineage, an alias, an approval, a deprecation, a delete, a share,
    model metadata and a deployment report; returns once every one is visible on the query service."""
    team, reader = f"cat-{uuid.uuid4().hex[:6]}", f"rdr-{uuid.uuid4().hex[:6]}"
    reader_key = await team_key(stack, reader, ["models:read"])
    for version in ("0.9.0", "1.0.0", "1.1.0", "2.0.0-rc.1", "0.1.0"):
        await register(
            stack, ADMIN_KEY.token, team, "fraud", version, tags={"domain": "cards"}, description=f"fraud {version}"
        )
    await register(
        stack, ADMIN_KEY.token, team, "fraud-small", "1.0.0", parent={"team": team, "name": "fraud", "version": "1.0.0"}
    )
    async with client(stack, "registration") as http:
        writes = [
            await http.patch(f"/v1/models/{team}/fraud", json={"description": "Scores card payments for fraud"}),
            await http.patch(f"/v1/models/{team}/fraud/versions/1.1.0", json={"description": "retrained"}),
            await http.put(f"/v1/models/{team}/fraud/aliases/prod", json={"version": "1.0.0"}),
            await http.put(f"/v1/models/{team}/fraud/versions/1.0.0/approval", json={"status": "approved"}),
            await http.post(f"/v1/models/{team}/fraud/versions/0.9.0/lifecycle", json={"state": "deprecated"}),
            await http.put(f"/v1/models/{team}/fraud/shares/{reader}"),
        ]
        assert [w.status_code for w in writes] == [200] * len(writes), [w.text for w in writes]
        deleted = await http.delete(f"/v1/models/{team}/fraud/versions/0.1.0")
        assert deleted.status_code == 204, deleted.text
    report = {
        "team": team,
        "name": "fraud",
        "version": "1.0.0",
        "environment": "prod",
        "status": "deployed",
        "target": "kubernetes",
        "pipeline": "github-actions",
        "run_id": "7",
        "occurred_at": "2026-11-26T10:00:00+00:00",
    }
    async with client(stack, "deploy-tracker") as http:
        reported = await http.post("/v1/deployments/events", json=report, headers={"Prefer": "wait=30"})
    assert reported.status_code in (200, 201, 202), reported.text
    catalogue = Catalogue(team, reader, reader_key)

    missing: list[str] = []

    async def visible() -> bool:
        reads = await read_catalogue(stack, catalogue)
        version = reads[f"/v1/models/{team}/fraud/versions/1.0.0"][1]
        checks = {
            "deployed to prod": isinstance(version, dict)
            and version.get("environments", {}).get("prod", {}).get("status") == "deployed",
            "lineage child": reads[f"/v1/models/{team}/fraud-small/versions/1.0.0"][0] == 200,
            "0.1.0 deleted": reads[f"/v1/models/{team}/fraud/versions/0.1.0"][0] == 404,
            "@prod": reads[f"/v1/models/{team}/fraud/versions/@prod"][0] == 200,
            "shared": reads[f"as {reader}: /v1/models/{team}/fraud"][0] == 200,
            "searchable": found_by_search(reads[f"/v1/assistant/search?q=fraud&team={team}"][1]),
            "in the reader's feed": in_feed(reads[f"as {reader}: {FEED}"][1]),
        }
        missing[:] = [name for name, holds in checks.items() if not holds]
        return not missing

    try:
        await until(visible, timeout=60, what="every write of the catalogue visible on the query service")
    except AssertionError:
        raise AssertionError(f"not visible on the query service: {missing}") from None
    return catalogue


async def settled_reads(stack: EmbeddedStack, catalogue: Catalogue) -> dict[str, tuple[int, Any]]:
    """The catalogue's reads once two in a row answer the same (search and the feed follow the model)."""
    last: list[dict[str, tuple[int, Any]]] = [await read_catalogue(stack, catalogue)]

    async def same_twice() -> dict[str, tuple[int, Any]] | None:
        reads = await read_catalogue(stack, catalogue)
        settled = reads == last[0]
        last[0] = reads
        return reads if settled else None

    return await until(same_twice, timeout=30, what="the catalogue's reads settled", interval=0.2)


async def read_catalogue(stack: EmbeddedStack, catalogue: Catalogue) -> dict[str, tuple[int, Any]]:
    """Status and JSON body of every kind of read of the catalogue, by path."""
    t, model = catalogue.team, f"/v1/models/{catalogue.team}/fraud"
    paths = [
        f"/v1/models?team={t}",
        f"/v1/models?tag=domain:cards&team={t}",
        f"/v1/models?team={t}&environment=prod&status=deployed",
        f"/v1/teams/{t}/models",
        model,
        f"{model}/history",
        f"{model}/versions",
        f"{model}/versions?include_prerelease=true",
        f"{model}/versions?range=>=1.0.0,<2.0.0",
        f"{model}/versions/1.0.0",
        f"{model}/versions/1.1.0",
        f"{model}/versions/0.1.0",
        f"{model}/versions/latest",
        f"{model}/versions/@prod",
        f"{model}/versions/1.0.0/lineage",
        f"{model}/versions/1.0.0/deployments",
        f"{model}/deployments",
        f"{model}/aliases",
        f"{model}/shares",
        f"/v1/models/{t}/fraud-small/versions/1.0.0",
        f"/v1/models/{t}/fraud-small/versions/1.0.0/lineage",
        f"/v1/teams/{t}/versions",
        f"/v1/teams/{t}/deployments",
        f"/v1/assistant/search?q=fraud&team={t}",  # one team: scores of others never reorder it
        f"/v1/assistant/models/{t}/fraud/card",
    ]
    reads: dict[str, tuple[int, Any]] = {}
    async with client(stack, "query") as http:
        for path in paths:
            response = await http.get(path)
            reads[path] = (response.status_code, _body(response))
        found = reads[model][1]
        model_id = found.get("model_id") if isinstance(found, dict) else None
        by_id = await http.get(f"/v1/models/id/{model_id}")
        reads["/v1/models/id/{model_id}"] = (by_id.status_code, _body(by_id))
    async with client(stack, "query", catalogue.reader_key) as http:
        search = f"/v1/assistant/search?q=fraud&team={t}"
        for path in (model, f"{model}/versions", f"/v1/models?team={t}", search, FEED):
            response = await http.get(path)
            reads[f"as {catalogue.reader}: {path}"] = (response.status_code, _body(response))
    return reads


def in_feed(page: Any) -> bool:
    return isinstance(page, dict) and any(doc["metadata"].get("name") == "fraud" for doc in page.get("items", []))


def found_by_search(page: Any) -> bool:
    return isinstance(page, dict) and any(hit["model"]["name"] == "fraud" for hit in page.get("items", []))


def _body(response: httpx.Response) -> Any:
    """The JSON body, without a refusal's ``correlation_id`` (new on every request) or search scores.

    A search index re-indexed from nothing scores differently from one updated in place (its BM25
    statistics still count replaced documents until segments merge); the hits and their order hold.
    """
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        body.pop("correlation_id", None)
        if response.url.path.endswith("/assistant/search"):
            for hit in body.get("items", []):
                hit.pop("score", None)
    return body


def differences(before: dict[str, tuple[int, Any]], after: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    """What ``after`` answers differently from ``before`` (paths missing from ``after`` are not compared)."""
    return {path: (read, after[path]) for path, read in before.items() if path in after and after[path] != read}


@pytest.fixture(scope="module")
async def calm(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedStack]:
    """A private stack nothing is killed on (QUERY_CONSISTENCY_WAIT_SECONDS=0.5), for this module."""
    async with private_stack(private_settings(tmp_path_factory.mktemp("calm"))) as stack:
        yield stack


# --- 2. rebuilt from nothing -------------------------------------------------------------------


async def test_projection_rebuilds_from_nothing(calm: EmbeddedStack) -> None:
    catalogue = await write_catalogue(calm)
    before = await settled_reads(calm, catalogue)
    assert all(status == 200 for path, (status, _) in before.items() if not path.endswith("/0.1.0")), before
    # The one documented command (docs/operations.md), as an operator runs it.
    env = {name: value for name, value in os.environ.items() if name != "INTERNAL_API_TOKEN"}
    command = [REGISTRY, "projection", "rebuild", "--query-url", calm.url("query")]
    process = await asyncio.create_subprocess_exec(
        *command, env={**env, "REGISTRY_API_KEY": ADMIN_KEY.token}, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    rebuilt = json.loads(out)
    assert rebuilt["events"]["r"] > 0 and rebuilt["events"]["d"] > 0 and rebuilt["versions"] >= 5, rebuilt
    # The rebuild answers once the new model is in place: the reads answer from it at once ...
    after = await read_catalogue(calm, catalogue)
    assert not differences(before, without_search(after)), differences(before, without_search(after))
    outcome: dict[str, Any] = {}

    async def same() -> bool:  # ... and search, fed by the projection, indexes it again
        after = await read_catalogue(calm, catalogue)
        outcome["differences"] = differences(before, after)
        return not outcome["differences"]

    try:
        await until(same, timeout=30, what="search answering as before the rebuild", interval=0.2)
    except AssertionError:
        raise AssertionError(f"after the rebuild: {outcome['differences']}") from None


def without_search(reads: dict[str, tuple[int, Any]]) -> dict[str, tuple[int, Any]]:
    """``reads`` with the search answers taken as they were (search is re-indexed behind the model)."""
    return {path: read for path, read in reads.items() if "/v1/assistant/search" not in path}


async def test_query_with_nothing_stored_builds_its_model_again(calm: EmbeddedStack) -> None:
    catalogue = await write_catalogue(calm)
    before = await settled_reads(calm, catalogue)
    await kill(calm, "query")
    try:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(calm.settings.mongodb_uri)
        try:
            stored = mongo[service_database("query")]
            for name in PROJECTION_COLLECTIONS:
                await stored.drop_collection(name)
            assert not set(await stored.list_collection_names()) & set(PROJECTION_COLLECTIONS)
        finally:
            await mongo.close()
    finally:
        await start_again(calm, "query")
    outcome: dict[str, Any] = {}

    async def same() -> bool:
        after = await read_catalogue(calm, catalogue)
        outcome["differences"] = differences(before, after)
        return not outcome["differences"]

    try:
        await until(same, timeout=60, what="every read answering as before", interval=0.2)
    except AssertionError:
        raise AssertionError(f"built again from nothing: {outcome['differences']}") from None
    assert await applied(calm) >= 12  # every event of the catalogue applied again, none loaded


# --- 3. without the databases ------------------------------------------------------------------


async def test_reads_answer_while_databases_are_down(tmp_path: Path) -> None:
    async with private_stack(private_settings(tmp_path / "data")) as stack:
        catalogue = await write_catalogue(stack)
        before = await settled_reads(stack, catalogue)
        assert stack.mongo is not None and stack.audit_mongo is not None
        servers = (stack.mongo, stack.audit_mongo)
        await asyncio.gather(*(server.stop(grace=20) for server in servers))
        try:
            during = await read_catalogue(stack, catalogue)
            async with client(stack, "registration") as http:
                started = time.monotonic()
                write = await http.post(
                    f"/v1/models/{catalogue.team}/fraud/versions",
                    json={"version": "3.0.0", "framework": "onnx", "artifact_uri": "s3://models/fraud/3.0.0"},
                )
                waited = time.monotonic() - started
        finally:
            for server in servers:
                await server.start()
    assert not differences(before, during), differences(before, during)
    assert write.status_code == 503, write.text
    assert write.headers["content-type"].startswith("application/problem+json")
    assert write.json()["type"] == "urn:registry:problem:unavailable" and "retry-after" in write.headers
    assert waited < 20  # refused once the database cannot be reached, not after a client's time-out


async def test_reads_answer_while_databases_hang(tmp_path: Path) -> None:
    """A database server that stops answering (SIGSTOP: connections stay open) holds no read up."""
    async with private_stack(private_settings(tmp_path / "data")) as stack:
        catalogue = await write_catalogue(stack)
        before = await settled_reads(stack, catalogue)
        servers = [server.process for server in (stack.mongo, stack.audit_mongo) if server and server.process]
        for process in servers:
            process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            during = await read_catalogue(stack, catalogue)
            took = time.monotonic() - started
        finally:
            for process in servers:
                process.send_signal(signal.SIGCONT)
    assert not differences(before, during), differences(before, during)
    assert took < 10, took  # about thirty reads, none of them waiting on a database


# --- 4. a stack stopped with events the projection never saw ----------------------------------


def staging(team: str, version: str, status: str) -> dict[str, Any]:
    """A deployment report to ``staging`` (no approval needed there) of ``team/m``."""
    return {
        "team": team,
        "name": "m",
        "version": version,
        "environment": "staging",
        "status": status,
        "occurred_at": "2026-11-26T10:00:00+00:00",
    }


async def report_waiting(tracker: httpx.AsyncClient, data: dict[str, Any]) -> httpx.Response:
    """A report over the bridge that waits for its outcome (``Prefer: wait``), as pipelines send them."""
    return await tracker.post("/v1/deployments/events", json=data, headers={"Prefer": "wait=30"})


async def test_stack_stopped_with_unprojected_events_catches_up(tmp_path: Path) -> None:
    settings = private_settings(tmp_path / "data")
    team = f"gap-{uuid.uuid4().hex[:6]}"
    unprojected = ["2.0.0", "2.1.0", "3.0.0-rc.1", "3.0.0"]
    async with private_stack(settings) as stack:
        async with client(stack, "query") as query, client(stack, "deploy-tracker") as tracker:
            await register(stack, ADMIN_KEY.token, team, "m", "1.0.0")
            await first_ok(query, f"/v1/models/{team}/m/versions/1.0.0")
            pause(stack, "query")  # it sees nothing from here on
            async with Collector(stack.settings.kafka_bootstrap, EVENTS) as events:
                for version in unprojected:
                    await register(stack, ADMIN_KEY.token, team, "m", version)
                deployed = await report_waiting(tracker, staging(team, "1.0.0", "deploying"))
                assert deployed.status_code == 200, deployed.text
                # The tracker stops too: it will never see 3.1.0 on the topic.
                await events.wait_for(registered_for(team), count=1 + len(unprojected), timeout=60)
                pause(stack, "deploy-tracker")
                await register(stack, ADMIN_KEY.token, team, "m", "3.1.0")
                # Relayed: on the topic (and marked published in registration's outbox).
                await events.wait_for(registered_for(team), count=2 + len(unprojected), timeout=60)
        await kill(stack, "query")
        await kill(stack, "deploy-tracker")
    # The whole stack stopped: the broker forgot every topic; the databases kept everything.
    async with (
        private_stack(settings) as stack,
        client(stack, "query") as query,
        client(stack, "deploy-tracker") as tracker,
    ):
        for version in ["1.0.0", *unprojected, "3.1.0"]:
            read = await first_ok(query, f"/v1/models/{team}/m/versions/{version}", timeout=60)
            assert read.json()["version"] == version
        latest = await query.get(f"/v1/models/{team}/m/versions/latest")
        caught_up = await applied(stack)
        assert latest.json()["version"] == "3.1.0"

        async def staged() -> bool:  # the tracker's log is read too (retried while it was starting)
            read = await query.get(f"/v1/models/{team}/m/versions/1.0.0/deployments")
            return bool(read.json()["environments"].get("staging", {}).get("status") == "deploying")

        await until(staged, timeout=60, what="the report the query service never saw shown")
        caught_up = await applied(stack)
        # The tracker knows the version it never saw, and the query service shows its report.
        later = await report_waiting(tracker, staging(team, "3.1.0", "deployed"))
        assert later.status_code == 200 and later.json()["outcome"] == "applied", later.text
        path = f"/v1/models/{team}/m/versions/3.1.0/deployments"
        shown = await query.get(path, headers={CONSISTENCY: later.headers[CONSISTENCY]})
    assert shown.status_code == 200 and shown.json()["environments"]["staging"]["status"] == "deployed", shown.text
    # Read from the projection, which applied the events it had never seen, from each owner's log.
    assert caught_up >= len(unprojected) + 2, caught_up


# --- 5. read-your-writes over HTTP -------------------------------------------------------------


async def test_revision_token_read_your_writes(calm: EmbeddedStack) -> None:
    team, word = f"ryw-{uuid.uuid4().hex[:6]}", f"okapi{uuid.uuid4().hex[:8]}"
    stranger = await team_key(calm, f"str-{uuid.uuid4().hex[:6]}", ["models:read"])
    async with (
        client(calm, "registration") as registration,
        client(calm, "deploy-tracker") as tracker,
        client(calm, "query") as query,
        client(calm, "query", stranger) as outsider,
    ):

        async def read(path: str, token: str, http: httpx.AsyncClient = query) -> httpx.Response:
            return await http.get(path, headers={CONSISTENCY: token})

        registered = await register(calm, ADMIN_KEY.token, team, "m", "1.0.0", description=f"scores {word}")
        created = registered.headers[CONSISTENCY]
        source, model_id, revision = created.split(".")
        assert (source, model_id.startswith("mdl_"), revision.isdigit()) == ("r", True, True), created
        got = await read(f"/v1/models/{team}/m/versions/1.0.0", created)
        assert got.status_code == 200 and got.json()["version"] == "1.0.0", got.text
        found = await read(f"/v1/assistant/search?q={word}", created)  # search waits for its index too
        assert [hit["model"]["name"] for hit in found.json()["items"]] == ["m"], found.text

        patched = await registration.patch(f"/v1/models/{team}/m/versions/1.0.0", json={"description": "retrained"})
        assert patched.status_code == 200 and int(patched.headers[CONSISTENCY].split(".")[2]) > int(revision)
        got = await read(f"/v1/models/{team}/m/versions/1.0.0", patched.headers[CONSISTENCY])
        assert got.json()["description"] == "retrained"

        aliased = await registration.put(f"/v1/models/{team}/m/aliases/prod", json={"version": "1.0.0"})
        got = await read(f"/v1/models/{team}/m/versions/@prod", aliased.headers[CONSISTENCY])
        assert got.status_code == 200 and got.json()["version"] == "1.0.0", got.text

        reported = await report_waiting(tracker, staging(team, "1.0.0", "deploying"))
        deployed = reported.headers[CONSISTENCY]
        assert deployed.startswith(f"d.{model_id}."), deployed
        both = f"{aliased.headers[CONSISTENCY]},{deployed}"
        got = await read(f"/v1/models/{team}/m/versions/1.0.0/deployments", both)
        assert got.status_code == 200 and got.json()["environments"]["staging"]["status"] == "deploying", got.text

        # Another team's reader learns nothing from a token: reached, it reads the usual 404 ...
        path = f"/v1/models/{team}/m/versions/1.0.0"
        hidden, plain = await read(path, created, outsider), await outsider.get(path)
        # ... and one far ahead waits out alike for a model that exists and one that does not.
        ahead = f"r.{model_id}.{int(revision) + 10**15}"
        nowhere = f"r.mdl_{uuid.uuid4().hex[:24]}.{int(revision) + 10**15}"
        started = time.monotonic()
        waited_out = await read(path, ahead)
        waited = time.monotonic() - started
        unknown = await read(path, nowhere, outsider)
        malformed = await read(path, "r.not-a-model.12")
    assert (hidden.status_code, _body(hidden)) == (plain.status_code, _body(plain)) == (404, _body(plain))
    assert waited_out.status_code == 503, waited_out.text
    assert waited_out.headers["retry-after"] == "1"
    assert waited_out.headers["content-type"].startswith("application/problem+json")
    assert waited_out.json()["type"] == "urn:registry:problem:unavailable"
    assert 0.45 <= waited < 4  # QUERY_CONSISTENCY_WAIT_SECONDS=0.5, not the default 5 s
    assert (unknown.status_code, _body(unknown)) == (503, _body(waited_out))
    assert malformed.status_code in (400, 422), malformed.text
