"""Benchmarks of the registry on the embedded stack; prints a table (not a test: no assertions).

    make bench                       # or: .venv/bin/python bench/registry_bench.py --help

1. Registration end to end: N commands published with plain aiokafka → every outcome event seen
   on ``registry.events`` and every version readable over HTTP. Latency is publish → outcome event;
   the version is committed (so readable) before its event is relayed, so this bounds
   command-to-readable from above.
2. Reads with V versions loaded: get-by-name-version and a filtered, paginated model list, right
   after the load (while the services still digest it: search indexing, the query's write-behind)
   and again at rest, once the whole stack has used under 0.35 of a core for 2 s (idle, it uses about 0.2).
3. The stand-in's bulk insert and update ceilings, measured in the same run on each of its two
   servers (the shared one, the audit log's), the documents one registration writes on each (read
   from their oplogs), and so the registrations/s the stand-in would allow (``bench/stand_in.py``);
   the services' RSS.
4. Where the time goes: CPU milliseconds per registration end to end, by process of the stack
   (``bench/process_cpu.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from process_cpu import add_cpu_row, cpu_seconds, per_unit_ms, until_quiet
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table
from stand_in import add_stand_in_rows, bound_per_s, measure_ceiling, oplog_position, settled_writes
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registration.handlers import Command, event_from_outbox, handle_commands
from registration.repository import MongoRepository
from registry_cli.database_users import service_database
from registry_cli.secrets import load_or_create
from registry_cli.stack import EmbeddedStack
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from registry_contract.messages import REGISTER_MODEL_VERSION
from shared.chassis.signing import EventSigner
from shared.outbox.relay import OutboxRelay
from tests.throwaway import throwaway_stack, unthrottled_admin_key

console = Console()
FRAMEWORKS = ["xgboost", "onnx", "pytorch", "scikit-learn"]
# Commands a transaction of the bulk load: 2,000 at 100,000 versions (2,000 new models, 6,000
# documents) outlived the stand-in's 10 s transaction lifetime, and so, once, did 500 while the
# services were still busy with the Kafka phase; registration's consumer takes up to 500.
LOAD_BATCH = 250


def auth(stack: EmbeddedStack) -> dict[str, str]:
    """The bootstrap platform:admin key as a header: every read and command is authenticated."""
    return {"Authorization": f"Bearer {stack.admin_key}"}


async def use_unthrottled_admin_key(stack: EmbeddedStack) -> None:
    """Make the bench's own platform:admin key, with a rate limit far above its load, the stack's key."""
    stack.admin_key = await unthrottled_admin_key(stack, name="bench")


def register(team: str, name: str, version: str, framework: str, token: str | None = None) -> CloudEvent:
    data = {
        "team": team,
        "name": name,
        "version": version,
        "framework": framework,
        "artifact_uri": f"s3://ml-models/{team}/{name}/{version}/model.tar.gz",
        "deployment_targets": ["sagemaker"],
        "tags": {"owner": "bench", "tier": str(hash(name) % 3)},
        "metrics": {"auc": 0.9},
    }
    return CloudEvent(source="/bench", type=REGISTER_MODEL_VERSION, data=data, sign_with=token or None)


async def bench_registration(stack: EmbeddedStack, commands: int) -> dict[str, Any]:
    bootstrap = stack.settings.kafka_bootstrap
    models = max(1, commands // 10)
    events = [
        register("bench-e2e", f"m{i % models:05d}", f"1.{i // models}.0", "xgboost", stack.admin_key)
        for i in range(commands)
    ]
    pending = {event.id for event in events}
    published: dict[str, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(
        "registry.events",
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="latest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    await consumer.seek_to_end()
    await asyncio.sleep(3)  # let the group settle before publishing
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()

    async def consume() -> None:
        while pending:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    cause = dict(record.headers).get("ce_causationid", b"").decode()
                    if cause in pending:
                        pending.discard(cause)
                        latencies.append(now - published[cause])

    servers = {"shared": stack.settings.mongodb_uri, "audit": stack.settings.audit_mongodb_uri}
    since = {name: await oplog_position(uri) for name, uri in servers.items()}
    cpu_before = await asyncio.to_thread(cpu_seconds, stack)
    consumer_task = asyncio.create_task(consume())
    started = time.perf_counter()
    for event in events:
        value, headers = event.to_kafka()
        published[event.id] = time.perf_counter()
        await producer.send(
            "registry.commands", value, key=f"{event.data['team']}/{event.data['name']}".encode(), headers=headers
        )
    await producer.flush()
    await asyncio.wait_for(consumer_task, 600)
    events_done = time.perf_counter()
    cpu = per_unit_ms(cpu_before, await asyncio.to_thread(cpu_seconds, stack), commands)
    await producer.stop()
    await consumer.stop()
    # Before the reads below, whose access events would be counted as the registrations' writes.
    writes = {name: await settled_writes(uri, since[name]) for name, uri in servers.items()}
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=30, headers=auth(stack)) as http:
        readable = 0
        for i in range(models):
            page = (await http.get(f"/v1/models/bench-e2e/m{i:05d}/versions", params={"limit": 200})).json()
            readable += len(page["items"])
    return {
        "commands": commands,
        "throughput": commands / (events_done - started),
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "readable": readable,
        "writes": writes,
        "cpu_ms": cpu,
    }


async def bench_single_command(stack: EmbeddedStack, samples: int) -> tuple[float, float]:
    """One command at a time on an idle system: publish → readable over HTTP (polled every 5 ms)."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all")
    await producer.start()
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=10, headers=auth(stack)) as http:
        for i in range(samples):
            event = register("bench-single", f"m{i:04d}", "1.0.0", "onnx", stack.admin_key)
            value, headers = event.to_kafka()
            started = time.perf_counter()
            await producer.send_and_wait(
                "registry.commands", value, key=f"bench-single/m{i:04d}".encode(), headers=headers
            )
            while (await http.get(f"/v1/models/bench-single/m{i:04d}/versions/1.0.0")).status_code != 200:
                if time.perf_counter() - started > 30:
                    raise RuntimeError("a single command was not readable within 30 s (see the stack's logs)")
                await asyncio.sleep(0.005)
            latencies.append(time.perf_counter() - started)
    await producer.stop()
    return percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000


async def load_versions(stack: EmbeddedStack, versions: int) -> tuple[float, float]:
    """Load through the real command handler (one transaction per batch), as the consumer does,
    then publish the outcome events with the real relay; return both rates."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    db = client[service_database("registration")]
    repo = MongoRepository(client, db, writer=f"bench-loader-{uuid.uuid4().hex[:6]}")
    await repo.register_writer()
    principal = Principal(key_id="bench", team="platform", scopes=frozenset({"platform:admin"}))
    per_model, teams = 10, 20
    models = versions // per_model
    started = time.perf_counter()
    batch: list[Command] = []
    for i in range(versions):
        model = i % models
        event = register(
            f"team-{model % teams:02d}", f"model-{model:05d}", f"{i // models}.0.0", FRAMEWORKS[model % len(FRAMEWORKS)]
        )
        batch.append(Command(event, principal))
        if len(batch) == LOAD_BATCH:
            await handle_commands(batch, repo=repo, artifact_schemes=["s3"])
            batch = []
    if batch:
        await handle_commands(batch, repo=repo, artifact_schemes=["s3"])
    elapsed = time.perf_counter() - started
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()

    # Signed with the stack's key, as registration's relay signs: the query applies nothing else.
    signer = EventSigner(load_or_create(stack.settings.data_dir).event_signing_key.encode())

    async def publish(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        futures = []
        for row in rows:
            value, headers = signer.encode(event_from_outbox(row))
            encoded = [(name, raw.encode()) for name, raw in headers.items()]
            futures.append(await producer.send("registry.events", value, key=row["key"].encode(), headers=encoded))
        await asyncio.gather(*futures)
        return []

    relay = OutboxRelay(repo=repo, publish=publish, batch_size=1000, interval=1)
    relay_started = time.perf_counter()
    published = await relay.drain()
    relay_rate = published / (time.perf_counter() - relay_started)
    await repo.forget_writer(repo.writer)
    await producer.stop()
    await client.close()
    last = models - 1
    await projected(stack, f"/v1/models/team-{last % teams:02d}/model-{last:05d}/versions/{per_model - 1}.0.0")
    return versions / elapsed, relay_rate


async def projected(stack: EmbeddedStack, path: str, *, timeout: float = 600) -> None:
    """Wait until the query's projection answers ``path`` (its reads come from events, not the database)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=30, headers=auth(stack)) as http:
        while (await http.get(path)).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the query had not projected {path} after {timeout:g} s")
            await asyncio.sleep(0.5)


async def bench_reads(stack: EmbeddedStack, versions: int, requests: int) -> dict[str, Any]:
    models = versions // 10
    rng = random.Random(1)
    gets: list[float] = []
    lists: list[float] = []
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=30, headers=auth(stack)) as http:
        for _ in range(50):  # warm up connections and caches
            await http.get("/v1/models/team-00/model-00000/versions/1.0.0")
        for _ in range(requests):
            model = rng.randrange(models)
            path = f"/v1/models/team-{model % 20:02d}/model-{model:05d}/versions/{rng.randrange(10)}.0.0"
            started = time.perf_counter()
            response = await http.get(path)
            gets.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        cursor = None
        for i in range(requests // 4):
            params: dict[str, Any] = {"team": f"team-{i % 20:02d}", "framework": FRAMEWORKS[i % 4], "limit": 50}
            if cursor:
                params["cursor"] = cursor
            started = time.perf_counter()
            response = await http.get("/v1/models", params=params)
            lists.append(time.perf_counter() - started)
            body = response.json()
            assert response.status_code == 200 and body["items"], response.text
            cursor = None  # each request is a first page; the cursor page is measured below
        pages: list[float] = []
        for i in range(requests // 4):
            params = {"team": f"team-{i % 20:02d}", "tag": "owner:bench", "limit": 50}
            first = (await http.get("/v1/models", params=params)).json()
            started = time.perf_counter()
            response = await http.get("/v1/models", params={**params, "cursor": first["next_cursor"]})
            pages.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return {
        "get": (percentile(gets, 50) * 1000, percentile(gets, 99) * 1000),
        "list": (percentile(lists, 50) * 1000, percentile(lists, 99) * 1000),
        "next_page": (percentile(pages, 50) * 1000, percentile(pages, 99) * 1000),
    }


def rss_mb(stack: EmbeddedStack) -> dict[str, float]:
    result = {}
    for name, child in stack.services.items():
        assert child.process
        status = Path(f"/proc/{child.process.pid}/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        result[name] = kb / 1024
    return result


async def main(args: argparse.Namespace) -> int:
    console.print("starting the embedded stack …")
    async with throwaway_stack("registry-bench-", before_services=use_unthrottled_admin_key) as stack:
        console.print("single commands on an idle system …")
        single = await bench_single_command(stack, 50)
        console.print(f"registration: {args.commands} commands over Kafka …")
        registration = await bench_registration(stack, args.commands)
        console.print(f"loading {args.versions} versions through the command handler …")
        load_rate, relay_rate = await load_versions(stack, args.versions)
        console.print("reads …")
        reads = await bench_reads(stack, args.versions, args.reads)
        console.print("waiting for the stack to finish digesting the load …")
        settled = await until_quiet(stack)
        rested = await bench_reads(stack, args.versions, args.reads)
        console.print("the stand-in's write ceilings …")
        ceilings = {
            "shared": await measure_ceiling(stack.settings.mongodb_uri),
            "audit": await measure_ceiling(stack.settings.audit_mongodb_uri),
        }
        memory = rss_mb(stack)
    table = Table(title="Model Registry benchmark (embedded stack, this machine)")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("target", justify="right")
    r = registration
    table.add_row(
        "one command on an idle system → readable over HTTP p50 / p99 (ms)", "{:.0f} / {:.0f}".format(*single), "< 1000"
    )
    table.add_row(f"registrations/s end to end ({r['commands']} commands)", f"{r['throughput']:.0f}", "≥ 1000")
    table.add_row(
        "command → outcome event p50 / p95 / p99 (ms)", f"{r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f}", ""
    )
    table.add_row("versions readable over HTTP afterwards", f"{r['readable']} / {r['commands']}", "all")
    add_cpu_row(table, "CPU ms per registration end to end, by process", r["cpu_ms"])
    table.add_row(f"bulk load through the handler ({args.versions} versions), versions/s", f"{load_rate:.0f}", "")
    table.add_row("outbox relay to Kafka, events/s", f"{relay_rate:.0f}", "")
    for when, measured in ((" right after the load", reads), (f" at rest ({settled:.0f} s later)", rested)):
        table.add_row(
            f"get by name+version p50 / p99 (ms) at {args.versions} versions{when}",
            "{:.1f} / {:.1f}".format(*measured["get"]),
            "≤ 3 / 10",
        )
        table.add_row(
            f"filtered list (team+framework) p50 / p99 (ms){when}",
            "{:.1f} / {:.1f}".format(*measured["list"]),
            "≤ 10 / 30",
        )
        table.add_row(
            f"filtered list, next page by cursor p50 / p99 (ms){when}",
            "{:.1f} / {:.1f}".format(*measured["next_page"]),
            "≤ 10 / 30",
        )
    add_stand_in_rows(table, r["writes"], ceilings, r["commands"], "registration", "registrations")
    table.add_row(
        "RSS of the four services (MB)",
        f"{sum(memory.values()):.0f} " + "(" + ", ".join(f"{k} {v:.0f}" for k, v in memory.items()) + ")",
        "< 400",
    )
    console.print(table)
    results = {
        "registration": {k: v for k, v in registration.items() if k != "writes"},
        "load_versions_per_s": load_rate,
        "reads_ms": reads,
        "reads_at_rest_ms": rested,
        "settled_after_s": settled,
        "stand_in": {
            name: {
                "inserts_per_s": ceilings[name].inserts_per_s,
                "updates_per_s": ceilings[name].updates_per_s,
                "documents_per_registration": writes.total() / r["commands"],
                "bound_per_s": bound_per_s(writes, r["commands"], ceilings[name]),
            }
            for name, writes in r["writes"].items()
        },
        "rss_mb": memory,
    }
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=2000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
