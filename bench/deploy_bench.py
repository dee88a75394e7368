"""Benchmarks of deployment tracking on the embedded stack; prints a table (no assertions).

    .venv/bin/python bench/deploy_bench.py [--reports 50000] [--versions 500]

1. With the deploy-tracker stopped, N deployment reports (legal transitions, increasing times,
   spread over V versions x 2 environments) are published to ``deploy.events``; the tracker is
   started and the time until every one is in ``deployments`` gives reports applied/s.
   The documents each report writes (history, status, outbox, feed keys, webhook deliveries) are
   read from the stand-in's oplog and set against its write ceiling measured in the same run.
2. Webhook fan-out: one subscription to ``deployment_status_changed`` pointing at a local receiver;
   deliveries/s until every status change of step 1 has been delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table
from stand_in import add_stand_in_rows, measure_ceiling, oplog_position, settled_writes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registration.handlers import Command, handle_commands
from registration.repository import MongoRepository
from registry_cli.config import free_port
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack, common_settings
from registry_contract import messages
from registry_contract.auth import Principal
from registry_contract.envelope import CloudEvent
from shared.chassis.keystore import issue_key
from shared.chassis.verifiers import VerifierBox
from tests.throwaway import throwaway_stack

console = Console()
TEAM = "deploy-bench"
STATUSES = ["deploying", "deployed"]


async def prepare(stack: EmbeddedStack, versions: int) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    db = client[service_database("registration")]
    key, _ = await issue_key(
        db["api_keys"],
        team=TEAM,
        name="bench",
        scopes=["deployments:write", "team:admin"],
        created_by="bench",
        rate_limit=(1e5, 100_000),
        verifiers=VerifierBox.of(
            common_settings(stack.settings), sealing_keys=stack.settings.key_verifier_sealing_keys
        ),  # it signs its reports
    )
    repo = MongoRepository(client, db, writer="deploy-bench-loader")
    commands = [
        Command(
            CloudEvent(
                source="/bench",
                type=messages.REGISTER_MODEL_VERSION,
                data={
                    "team": TEAM,
                    "name": f"m{i:04d}",
                    "version": "1.0.0",
                    "framework": "onnx",
                    "artifact_uri": "s3://bucket/key",
                },
            ),
            Principal("bench", "platform", frozenset({"platform:admin"})),
        )
        for i in range(versions)
    ]
    await handle_commands(commands, repo=repo, artifact_schemes=["s3"])
    await client.close()
    return key.token


async def subscribe(stack: EmbeddedStack, token: str, url: str) -> None:
    """One webhook subscription to every status change, delivered to the local receiver."""
    async with httpx.AsyncClient(
        base_url=stack.url("deploy-tracker"), headers={"Authorization": f"Bearer {token}"}
    ) as http:
        hook = await http.post(
            f"/v1/teams/{TEAM}/webhooks", json={"url": url, "event_types": [messages.DEPLOYMENT_STATUS_CHANGED]}
        )
        assert hook.status_code == 201, hook.text


async def main(args: argparse.Namespace) -> int:
    received = {"count": 0}

    async def endpoint(_: Request) -> Response:
        received["count"] += 1
        return Response(status_code=204)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", endpoint, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    receiver = asyncio.create_task(server.serve())
    import os

    os.environ["DEPLOY_TRACKER_ALLOW_PRIVATE_WEBHOOKS"] = "true"
    console.print("starting the embedded stack …")
    try:
        async with throwaway_stack("registry-deploy-bench-") as stack:
            settings = stack.settings
            token = await prepare(stack, args.versions)
            if not args.no_webhook:
                await subscribe(stack, token, f"http://127.0.0.1:{port}/hook")
            tracker = stack.services["deploy-tracker"]
            await tracker.stop()
            console.print(f"publishing {args.reports} reports while the tracker is stopped …")
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
            await producer.start()
            t0 = datetime(2026, 11, 26, tzinfo=UTC)
            for i in range(args.reports):
                pair = i % (args.versions * 2)
                round_ = i // (args.versions * 2)
                data = {
                    "team": TEAM,
                    "name": f"m{pair // 2:04d}",
                    "version": "1.0.0",
                    "environment": ("staging", "canary")[pair % 2],  # neither gated (prod needs approved versions)
                    "status": STATUSES[round_ % 2],
                    "occurred_at": (t0 + timedelta(seconds=round_)).isoformat(),
                }
                event = CloudEvent(source="/bench", type=messages.DEPLOY_STATUS_REPORTED, data=data, sign_with=token)
                value, headers = event.to_kafka()
                await producer.send("deploy.events", value, key=f"{TEAM}/{data['name']}".encode(), headers=headers)
            await producer.flush()
            await producer.stop()
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
            history = client[service_database("deploy-tracker")]["deployments"]
            since = await oplog_position(settings.mongodb_uri)
            started = time.perf_counter()
            await tracker.start()
            while await history.estimated_document_count() < args.reports:
                await asyncio.sleep(0.5)
            applied_rate = args.reports / (time.perf_counter() - started)
            fan_started = time.perf_counter()
            while not args.no_webhook and received["count"] < args.reports:
                await asyncio.sleep(0.5)
            fan_rate = args.reports / (time.perf_counter() - started)
            drain_after = time.perf_counter() - fan_started
            writes = await settled_writes(settings.mongodb_uri, since)
            ceiling = await measure_ceiling(settings.mongodb_uri)
            await client.close()
    finally:
        server.should_exit = True
        await receiver
    table = Table(title="Deployment tracking benchmark (embedded stack, this machine)")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("target", justify="right")
    table.add_row(f"reports applied/s draining a backlog of {args.reports}", f"{applied_rate:.0f}", "≥ 1000")
    table.add_row("webhook deliveries/s (one subscription, local receiver)", f"{fan_rate:.0f}", "")
    table.add_row("webhook backlog drained after the last report was applied (s)", f"{drain_after:.1f}", "")
    add_stand_in_rows(table, {"shared": writes}, {"shared": ceiling}, args.reports, "report", "reports")
    console.print(table)
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=50_000)
    parser.add_argument("--versions", type=int, default=500)
    parser.add_argument("--no-webhook", action="store_true", help="no webhook subscription: the tracker alone")
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
