"""Benchmarks of access control and audit on the embedded stack; prints a table (no assertions).

    .venv/bin/python bench/security_bench.py [--messages 100000] [--requests 2000]

1. Audit ingest: with the audit service stopped, N access events are published to
   ``registry.access``; the service is started and the time until every one is chained in
   ``audit_log`` gives entries/s while draining a backlog.
2. Authentication on a read: ``GET /v1/meta`` with a cached key, with a key never seen before
   (cache miss: one MongoDB lookup), and ``GET /healthz`` (no authentication) as the baseline.
3. Reading the audit log those N entries are in: ``GET /v1/audit`` as a platform admin, the newest
   page of 50, and a page of 50 after 4,000 (a cursor 20 pages of 200 back), p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table
from stand_in import Writes, add_stand_in_rows, measure_ceiling, oplog_position, settled_writes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.auth import Principal, generate_api_key
from registry_contract.envelope import CloudEvent
from shared.chassis.keystore import issue_key
from tests.throwaway import throwaway_stack

console = Console()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


async def audit_ingest(stack: EmbeddedStack, messages_count: int) -> tuple[float, Writes]:
    audit = stack.services["audit"]
    await audit.stop()
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    principal = Principal("benchkey", "bench")
    for i in range(messages_count):
        event = CloudEvent(
            source="/bench",
            type=messages.ACCESS_READ,
            subject="bench",
            data={
                "principal": principal.key_id,
                "team": "bench",
                "method": "GET",
                "path": f"/v1/models/bench/m{i % 100}",
                "status": 200,
            },
        )
        value, headers = event.to_kafka()
        await producer.send("registry.access", value, key=b"bench", headers=headers)
    await producer.flush()
    await producer.stop()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.audit_mongodb_uri)
    heads = client[service_database("audit")]["audit_heads"]

    async def chained() -> int:
        docs = await heads.find({"_id": {"$regex": "^registry\\.access:"}}).to_list()
        return sum(int(d["seq"]) for d in docs)

    before = await chained()
    since = await oplog_position(stack.settings.audit_mongodb_uri)
    started = time.perf_counter()
    await audit.start()
    while await chained() - before < messages_count:
        await asyncio.sleep(0.5)
    elapsed = time.perf_counter() - started
    await client.close()
    return messages_count / elapsed, await settled_writes(stack.settings.audit_mongodb_uri, since)


async def auth_latency(stack: EmbeddedStack, requests: int) -> dict[str, tuple[float, float]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri)
    keys = client[service_database("registration")]["api_keys"]
    fresh = []
    for _ in range(requests):
        key, _record = await issue_key(
            keys,
            team="bench",
            name="b",
            scopes=["models:read"],
            created_by="bench",
            given=generate_api_key(),
            rate_limit=(1e5, 100_000),
        )
        fresh.append(key.token)
    hot, _ = await issue_key(
        keys, team="bench", name="hot", scopes=["models:read"], created_by="bench", rate_limit=(1e5, 100_000)
    )
    await client.close()
    result: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=10) as http:
        for _ in range(50):
            await http.get("/healthz")
            await http.get("/v1/meta", headers={"Authorization": f"Bearer {hot.token}"})
        for label, path, tokens in (
            ("no authentication (/healthz)", "/healthz", [None] * requests),
            ("cached key (/v1/meta)", "/v1/meta", [hot.token] * requests),
            ("key cache miss (/v1/meta)", "/v1/meta", fresh),
        ):
            timings = []
            for token in tokens:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                started = time.perf_counter()
                response = await http.get(path, headers=headers)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            result[label] = (pct(timings, 50), pct(timings, 99))
    return result


async def audit_list_latency(stack: EmbeddedStack, reads: int) -> dict[str, tuple[float, float]]:
    """p50/p99 ms of a page of the newest 50 entries, and of 50 entries 4,000 back, as a platform admin."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=headers, timeout=120) as http:
        cursor: str | None = None
        for _ in range(20):
            params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            cursor = (await http.get("/v1/audit", params=params)).raise_for_status().json()["next_cursor"]
        result: dict[str, tuple[float, float]] = {}
        for label, page in (("the newest 50", {"limit": 50}), ("50 after 4,000", {"limit": 50, "cursor": cursor})):
            timings = []
            for _ in range(reads):
                started = time.perf_counter()
                (await http.get("/v1/audit", params=page)).raise_for_status()
                timings.append(time.perf_counter() - started)
            result[label] = (pct(timings, 50), pct(timings, 99))
    return result


async def main(args: argparse.Namespace) -> int:
    console.print("starting the embedded stack …")
    async with throwaway_stack("registry-security-bench-") as stack:
        console.print("authentication latency …")
        latency = await auth_latency(stack, args.requests)
        console.print(f"audit ingest of a {args.messages}-message backlog …")
        ingest, writes = await audit_ingest(stack, args.messages)
        console.print("reading the audit log …")
        listing = await audit_list_latency(stack, reads=50)
        ceiling = await measure_ceiling(stack.settings.audit_mongodb_uri)
    table = Table(title="Access control and audit benchmark (embedded stack, this machine)")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("target", justify="right")
    table.add_row(f"audit ingest draining {args.messages} messages, entries/s", f"{ingest:.0f}", "≥ 3000")
    add_stand_in_rows(table, {"audit": writes}, {"audit": ceiling}, args.messages, "entry", "entries")
    for label, (p50, p99) in latency.items():
        table.add_row(f"read latency p50 / p99 (ms), {label}", f"{p50:.1f} / {p99:.1f}", "")
    for label, (p50, p99) in listing.items():
        table.add_row(f"audit log of {args.messages:,} entries, {label}, p50 / p99 (ms)", f"{p50:.1f} / {p99:.1f}", "")
    console.print(table)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
