"""Benchmarks of the assistant features on the embedded stack; prints a table (no assertions).

    .venv/bin/python bench/assistant_bench.py [--models 10000] [--versions-per-model 10] [--burst 1000]

1. The generated catalogue (tests/relevance) loaded straight into the query service's persisted
   read model (query/projection/storage.py, in its own database) before the services start; the
   query service loads it at start and builds its search index from it (its build-time gauge).
   Then it renders every feed document into memory (the benchmark waits for that: steady state).
2. Search over HTTP against the running query service (its index built at its start, including
   the catalogue): p50/p99 with filters and facets, hits shown from the index.
3. Event → searchable: a burst of registrations over Kafka; the latency of the k-th model is when
   the search total reached k minus when the k-th outcome event arrived on ``registry.events``.
4. The RAG feed streamed as NDJSON: documents per second, once the burst's documents are rendered
   into memory too (how long that took after the burst was searchable is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table
from stats import percentile

from query.projection.apply import latest_rank, tag_pairs
from query.projection.storage import PROJECTION_MODELS, PROJECTION_VERSIONS, Checkpoint, MongoProjectionStore, Rows
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_contract.documents import Document
from registry_contract.envelope import CloudEvent
from registry_contract.messages import REGISTER_MODEL_VERSION
from registry_contract.sortkeys import text_key, time_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script
from tests.relevance.catalogue import generate
from tests.relevance.judged import JUDGED
from tests.throwaway import throwaway_stack, unthrottled_admin_key

console = Console()
DATABASE = service_database("query")  # where the query service persists its read model


def stored(model: Document) -> Document:
    """A generated model with the derived fields the read model keeps on every model document."""
    updated = time_key(model["updated_at"], model["_id"])
    return model | {
        "latest_rank": latest_rank(model["latest_version"]),
        "tag_pairs": tag_pairs(model["tags"]),
        "created_key": time_key(model["created_at"], model["_id"]),
        "updated_key": updated,
        "name_key": text_key(model["name"], model["_id"]),
        "feed_key": updated,
        "former_readers": [],
    }


async def load_catalogue(stack: EmbeddedStack, models: int, versions_per_model: int) -> tuple[int, int, float]:
    """Write generated model and version documents as the query service's persisted read model.

    The query service answers from its in-memory read model, which it loads at start from its own
    database (:class:`MongoProjectionStore`) and then catches up from the owners' event logs; so the
    catalogue goes there, through the store's own write (the write path has its own benchmark).
    Registration gets no copy: nothing here reads or writes the catalogue through it (the burst
    registers models of its own team), and its event log simply has nothing to add to them. The
    checkpoint is left empty: the service catches up from each owner's log and the topic's start.
    """
    replicas = max(1, round(models / 324))
    catalogue = generate(replicas=replicas, versions_per_model=versions_per_model)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    started = time.perf_counter()
    # With the keys the read model keeps (sort keys, the feed's key): nothing to derive at start.
    model_docs = [stored(entry.model) for entry in catalogue]
    version_docs = [version for entry in catalogue for version in entry.versions]
    rows = Rows(
        upserts={
            PROJECTION_MODELS: [{"_id": doc["_id"], "doc": doc, "revisions": {}} for doc in model_docs],
            PROJECTION_VERSIONS: version_docs,
        }
    )
    await MongoProjectionStore(client[DATABASE]).write(rows, Checkpoint())
    await client.close()
    return len(model_docs), len(version_docs), time.perf_counter() - started


async def gauge(stack: EmbeddedStack, name: str) -> float:
    """The value of one of the query service's gauges (0 until it is set)."""
    async with httpx.AsyncClient(base_url=stack.url("query")) as http:
        text = (await http.get("/metrics")).text
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")), 0.0)


async def feed_warmed(stack: EmbeddedStack) -> float:
    """Wait for the query service to render every feed document into its cache; how long that took.

    The rest of the benchmark measures the steady state: the warm-up competes for both cores.
    """
    while not (seconds := await gauge(stack, "registry_feed_warm_seconds")):
        await asyncio.sleep(1)
    return seconds


QUERIES = [
    {"q": "fraud detection"},
    {"q": "churn predction"},  # a typo
    {"q": "forecast", "framework": "prophet"},
    {"q": "sentiment status:deployed"},
    {"q": '"image classification"'},
    {"q": "anom"},  # a prefix, as typed
    {"q": "credit scoring", "tag": "pii:true"},
    {"q": "recommend env:prod"},
]


async def bench_search(stack: EmbeddedStack, token: str, requests: int) -> dict[str, float]:
    """Search over HTTP: once per distinct query first (each a cache miss), then ``requests`` in rotation.

    The query service keeps results per index snapshot, so the rotation is mostly answered from
    memory (the catalogue does not change meanwhile); the first pass is what a new search costs.
    """
    queries = QUERIES + [{"q": judged.query} for judged in JUDGED]
    first: list[float] = []
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=stack.url("query"), headers={"Authorization": f"Bearer {token}"}) as http:
        for i in range(len(queries) + requests):
            params = dict(queries[i % len(queries)]) | {"limit": 10}
            started = time.perf_counter()
            response = await http.get("/v1/assistant/search", params=params)
            (first if i < len(queries) else latencies).append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"search {params} answered {response.status_code}: {response.text[:200]}")
    return {
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "new_p50": percentile(first, 50) * 1000,
        "new_p99": percentile(first, 99) * 1000,
        "distinct": len(queries),
    }


async def bench_event_to_searchable(stack: EmbeddedStack, token: str, burst: int) -> dict[str, float]:
    """Publish a burst of registrations; time each outcome event's arrival and each model's appearance.

    The k-th model to become searchable is matched with the k-th outcome event to arrive (both
    counts only grow), so the latency is the time between the two cumulative curves.
    """
    word = f"burst{uuid.uuid4().hex[:8]}"
    events = await _events_consumer(stack)
    arrived: list[float] = []
    reached: list[float] = []  # reached[k] = when the search total first was ≥ k + 1

    async def watch_events() -> None:
        while len(arrived) < burst:
            for records in (await events.getmany(timeout_ms=100)).values():
                now = time.perf_counter()
                arrived.extend(now for record in records if word.encode() in (record.value or b""))

    async def watch_search() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers) as http:
            while len(reached) < burst:
                total = (await http.get("/v1/assistant/search", params={"q": word, "limit": 1})).json()["total"]
                now = time.perf_counter()
                reached.extend([now] * (total - len(reached)))
                await asyncio.sleep(0.02)

    watchers = asyncio.gather(watch_events(), watch_search())
    started = time.perf_counter()
    await _publish_burst(stack, token, word, burst)
    await asyncio.wait_for(watchers, 600)
    await events.stop()
    latencies = [searchable - event for searchable, event in zip(reached, arrived, strict=True)]
    return {
        "found": len(reached),
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "all_searchable_s": reached[-1] - started,
    }


async def _events_consumer(stack: EmbeddedStack) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition("registry.events", p) for p in consumer.partitions_for_topic("registry.events") or []]
    if not partitions:
        await consumer.topics()
        found = consumer.partitions_for_topic("registry.events") or set()
        partitions = [TopicPartition("registry.events", p) for p in found]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    return consumer


async def _publish_burst(stack: EmbeddedStack, token: str, word: str, burst: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    for i in range(burst):
        data = {
            "team": "bench-burst",
            "name": f"b{i:05d}",
            "version": "1.0.0",
            "framework": random.choice(["xgboost", "onnx", "pytorch"]),
            "artifact_uri": f"s3://bench/b{i:05d}",
            "description": f"{word} burst model {i}",
        }
        event = CloudEvent(source="/bench", type=REGISTER_MODEL_VERSION, data=data, sign_with=token)
        value, headers = event.to_kafka()
        await producer.send("registry.commands", value, key=f"bench-burst/b{i:05d}".encode(), headers=headers)
    await producer.flush()
    await producer.stop()


async def burst_rendered(stack: EmbeddedStack, models: int) -> float:
    """Wait until the feed cache holds every model's document (the burst's are rendered as they change)."""
    started = time.perf_counter()
    while await gauge(stack, "registry_feed_cached_documents") < models:
        await asyncio.sleep(0.2)
    return time.perf_counter() - started


async def bench_feed(stack: EmbeddedStack, token: str) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"}
    documents = 0
    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=stack.url("query"), headers=headers, timeout=600) as http,
        http.stream("GET", "/v1/assistant/documents") as response,
    ):
        async for line in response.aiter_lines():
            documents += line.startswith('{"id"')
    seconds = time.perf_counter() - started
    return {"documents": documents, "per_second": documents / seconds}


def query_rss_mb(stack: EmbeddedStack) -> float:
    child = stack.services["query"]
    assert child.process
    status = Path(f"/proc/{child.process.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


async def main(args: argparse.Namespace) -> int:
    loaded: dict[str, Any] = {}

    async def seed(stack: EmbeddedStack) -> None:
        stack.admin_key = await unthrottled_admin_key(stack, name="bench")
        loaded["models"], loaded["versions"], loaded["seconds"] = await load_catalogue(
            stack, args.models, args.versions_per_model
        )

    # The query service is ready once its index is built from the loaded catalogue: allow for it.
    async with throwaway_stack("assistant-bench-", before_services=seed, ready_timeout=600) as stack:
        token = stack.admin_key
        assert token is not None
        build = await gauge(stack, "registry_search_build_seconds")
        warm = await feed_warmed(stack)
        search = await bench_search(stack, token, args.searches)
        burst = await bench_event_to_searchable(stack, token, args.burst)
        rendered_after = await burst_rendered(stack, loaded["models"] + args.burst)
        feed = await bench_feed(stack, token)
        query_rss = query_rss_mb(stack)
    table = Table(title="Assistant benchmark (embedded stack, this machine)")
    for column in ("measure", "result", "target"):
        table.add_column(column)
    table.add_row("catalogue loaded", f"{loaded['models']:,} models / {loaded['versions']:,} versions", "")
    table.add_row("search index build from the loaded read model at start", f"{build:.1f} s", "≤ 30 s")
    table.add_row("feed documents rendered into memory after the build", f"{warm:.1f} s", "reported")
    table.add_row(
        f"search over HTTP p50 / p99 ({args.searches:,} in rotation over {search['distinct']} queries)",
        f"{search['p50']:.1f} / {search['p99']:.1f} ms",
        "≤ 10 / 30 ms",
    )
    table.add_row(
        "search over HTTP, each query the first time (no cached result)",
        f"{search['new_p50']:.1f} / {search['new_p99']:.1f} ms",
        "reported",
    )
    table.add_row(
        f"outcome event → searchable, {args.burst}-command burst, p50 / p99",
        f"{burst['p50']:.0f} / {burst['p99']:.0f} ms ({burst['found']} found)",
        "p99 ≤ 1 s",
    )
    table.add_row("whole burst searchable after the first send", f"{burst['all_searchable_s']:.1f} s", "")
    table.add_row("whole burst's feed documents in memory, after it was searchable", f"{rendered_after:.1f} s", "")
    table.add_row(
        "feed streaming (NDJSON)", f"{feed['per_second']:,.0f} documents/s ({feed['documents']:,})", "≥ 5,000/s"
    )
    table.add_row("query service RSS", f"{query_rss:.0f} MB", "reported")
    console.print(table)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--versions-per-model", type=int, default=10)
    parser.add_argument("--searches", type=int, default=1_000)
    parser.add_argument("--burst", type=int, default=1_000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
