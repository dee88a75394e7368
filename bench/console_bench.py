"""Benchmark of the web console's pages on the embedded stack; prints a table (no assertions).

    .venv/bin/python bench/console_bench.py [--versions 200] [--rounds 200]

A model with ``--versions`` versions (metrics, tags), an alias, documentation and deployment
reports in two environments; a signed-in session (the console's own sign-in form); then each page
is fetched ``--rounds`` times, one at a time, over loopback. Each is timed twice: by the server
(its ``Server-Timing`` header: session, key check, every API read, rendering, until the answer
starts) and by the client (the round trip). Target: the model page at p50 ≤ 50 ms server-side.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_contract.auth import SCOPES
from shared.chassis.keystore import issue_key
from tests.throwaway import throwaway_stack

console = Console()
TEAM, MODEL = "console-bench", "card-fraud-xgb"
TARGET_P50_MS = {"model page": 50.0}


async def make_key(stack: EmbeddedStack) -> str:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    scopes = [s for s in SCOPES if s != "platform:admin"]
    key, _ = await issue_key(
        client[service_database("registration")]["api_keys"],
        team=TEAM,
        name="bench",
        scopes=scopes,
        created_by="bench",
        rate_limit=(1e5, 100_000),
    )
    await client.close()
    return key.token


async def seed(stack: EmbeddedStack, key: str, versions: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=headers, timeout=60) as http:
        gate = asyncio.Semaphore(8)

        async def register(i: int) -> None:
            version = f"{i // 100}.{i % 100}.0"
            body = {
                "version": version,
                "framework": "xgboost",
                "artifact_uri": f"s3://models/{MODEL}/{version}/model.tar.gz",
                "metrics": {"auc": 0.8 + i / 2000, "precision": 0.7 + i / 3000, "latency_ms": 20 - i / 20},
                "tags": {"owner": "alice", "dataset": f"cards-{i % 12}"},
                "description": f"Build {i} of the card fraud scorer",
            }
            async with gate:
                answer = await http.post(f"/v1/models/{TEAM}/{MODEL}/versions", json=body)
            answer.raise_for_status()

        await asyncio.gather(*(register(i) for i in range(versions)))
        documentation = "## Intended use\n\n" + "Card-not-present payments. " * 200 + "\n\n| a | b |\n|---|---|\n"
        (await http.patch(f"/v1/models/{TEAM}/{MODEL}", json={"documentation": documentation})).raise_for_status()
        (await http.put(f"/v1/models/{TEAM}/{MODEL}/aliases/champion", json={"version": "1.0.0"})).raise_for_status()
    async with httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=headers, timeout=60) as http:
        for i in range(0, min(versions, 50)):
            version = f"{i // 100}.{i % 100}.0"
            for environment in ("staging", "dev"):
                report = {
                    "team": TEAM,
                    "name": MODEL,
                    "version": version,
                    "environment": environment,
                    "status": "deployed",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
                await http.post("/v1/deployments/events", json=report, headers={"Prefer": "wait=10"})


async def sign_in(http: httpx.AsyncClient, key: str) -> None:
    form = (await http.get("/console/sign-in")).text
    token = re.search(r'name="sign_in_token" value="([^"]*)"', form)
    assert token
    signed = await http.post("/console/sign-in", data={"sign_in_token": token.group(1), "api_key": key})
    assert signed.status_code == 303, signed.text


async def timed(http: httpx.AsyncClient, path: str, rounds: int) -> tuple[list[float], list[float]]:
    """Round trips and the server's own times (its ``Server-Timing`` header), in ms."""
    for _ in range(5):  # warm: connection, caches
        assert (await http.get(path)).status_code == 200
    trips, server = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = await http.get(path)
        trips.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text[:300]
        server.append(float(answer.headers["server-timing"].split("dur=")[1]))
    return trips, server


async def main(args: argparse.Namespace) -> int:
    keys: list[str] = []

    async def before(stack: EmbeddedStack) -> None:
        keys.append(await make_key(stack))

    async with throwaway_stack("registry-console-bench-", before_services=before) as stack:
        started = time.perf_counter()
        await seed(stack, keys[0], args.versions)
        console.print(f"seeded {args.versions} versions in {time.perf_counter() - started:.1f}s")
        # The services catch up on the seeding (audit ingest, search and feed projections) before
        # anything is timed: those share the one MongoDB stand-in with the pages under test.
        await asyncio.sleep(args.settle)
        pages = {
            "model page": f"/console/models/{TEAM}/{MODEL}",
            "model page, chosen version": f"/console/models/{TEAM}/{MODEL}?version=1.50.0",
            "model card page": f"/console/models/{TEAM}/{MODEL}/card?version=1.50.0",
            "search page": "/console/search?q=card+fraud",
            "search results (as you type)": "/console/search/results?q=card+fra",
            "team page": f"/console/teams/{TEAM}",
            "audit page": f"/console/models/{TEAM}/{MODEL}/audit",
        }
        results = {}
        async with httpx.AsyncClient(base_url=stack.url("query"), timeout=60) as http:
            await sign_in(http, keys[0])
            size = len((await http.get(pages["model page"])).content)
            for name, path in pages.items():
                rounds = args.rounds if name.startswith("model page") else max(20, args.rounds // 4)
                results[name] = await timed(http, path, rounds)
        # What the model page costs, read by read: the API routes it calls (with the same key).
        base = f"/v1/models/{TEAM}/{MODEL}"
        reads = {
            "· GET model": base,
            "· GET 50 versions": f"{base}/versions?limit=50&include_prerelease=true",
            "· GET model deployments": f"{base}/deployments?limit=50&outcome=applied",
            "· GET shares": f"{base}/shares",
            "· GET lineage": f"{base}/versions/1.99.0/lineage",
            "· GET card": f"/v1/assistant/models/{TEAM}/{MODEL}/card?version=1.99.0",
        }
        headers = {"Authorization": f"Bearer {keys[0]}"}
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers, timeout=60) as http:
            for name, path in reads.items():
                results[name] = await timed(http, path, max(20, args.rounds // 4))
    title = f"Console pages, a model with {args.versions} versions (ms: the server's own time, and the round trip)"
    table = Table(title=title)
    for column in ("page", "n", "server p50", "p95", "p99", "round trip p50", "p99", "target p50"):
        table.add_column(column, justify="right" if column != "page" else "left")
    for name, (trips, server) in results.items():
        target = TARGET_P50_MS.get(name)
        table.add_row(
            name,
            str(len(trips)),
            f"{percentile(server, 50):.1f}",
            f"{percentile(server, 95):.1f}",
            f"{percentile(server, 99):.1f}",
            f"{percentile(trips, 50):.1f}",
            f"{percentile(trips, 99):.1f}",
            f"≤ {target:g}" if target else "—",
        )
    console.print(table)
    console.print(f"model page size: {size / 1024:.0f} KiB of HTML")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait after seeding")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
