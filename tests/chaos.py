"""Chaos on the embedded stack: kill services with SIGKILL under load, then count what was lost.

Commands (registrations) and deployment reports are published at a steady rate with
``acks=all``; only those the broker acknowledged count as sent. Meanwhile a consuming service
is killed at random intervals and the stack's supervisor restarts it. At the end the load stops,
everything drains, and the run is judged: every acknowledged command and report must have
exactly one outcome event, every registered version must be readable over HTTP, and every
record must have exactly one audit entry. Test harness: used by ``bench/chaos_bench.py`` and
tests/e2e/test_crash_safety.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.envelope import CloudEvent

CONSUMERS = ("registration", "audit", "deploy-tracker")


@dataclass
class ChaosReport:
    """What a run sent, what came out, and what went missing or came out twice."""

    seconds: float = 0.0
    commands_sent: int = 0
    reports_sent: int = 0
    outcomes: int = 0
    lost: int = 0  # acknowledged commands or reports without an outcome event
    doubled: int = 0  # commands or reports with more than one distinct outcome event
    not_readable: int = 0  # registered versions the query service does not return
    audit_lost: int = 0  # acknowledged records without an audit entry
    audit_doubled: int = 0  # records with more than one audit entry
    kills: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    restarts: dict[str, int] = field(default_factory=dict)
    drain_seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """Nothing lost, nothing doubled, everything readable and audited once."""
        return not (self.lost or self.doubled or self.not_readable or self.audit_lost or self.audit_doubled)


class _Outcomes:
    """Collects outcome events from ``registry.events`` in the background: causation id → event ids."""

    def __init__(self, bootstrap: str) -> None:
        self.by_cause: dict[str, set[str]] = defaultdict(set)
        self._consumer = AIOKafkaConsumer(
            "registry.events",
            bootstrap_servers=bootstrap,
            group_id=f"chaos-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",  # from the start: nothing published while it joins is missed
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
            fetch_max_wait_ms=20,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self._consumer:
            headers = {key: bytes(value).decode("utf-8", "replace") for key, value in record.headers or ()}
            # A report's deployment_report_recorded (for the read side) shares its outcome's cause.
            if "ce_causationid" in headers and headers.get("ce_type") != messages.DEPLOYMENT_REPORT_RECORDED:
                self.by_cause[headers["ce_causationid"]].add(headers.get("ce_id", ""))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


@dataclass
class _Load:
    """The records the broker acknowledged: command ids with their versions, report ids."""

    team: str
    commands: dict[str, tuple[str, str]] = field(default_factory=dict)  # ce_id → (model, version)
    reports: set[str] = field(default_factory=set)
    versions: list[tuple[str, str]] = field(default_factory=list)  # acknowledged, in order


async def _produce(stack: EmbeddedStack, token: str, load: _Load, *, rate: float, until: float, models: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sequence, started = 0, time.monotonic()
    try:
        while time.monotonic() < until:
            model, version = f"m{sequence % models:03d}", f"1.{sequence // models}.0"
            command = CloudEvent(
                source="/chaos",
                type=messages.REGISTER_MODEL_VERSION,
                sign_with=token,
                data={
                    "team": load.team,
                    "name": model,
                    "version": version,
                    "framework": "onnx",
                    "artifact_uri": f"s3://chaos/{model}/{version}.onnx",
                },
            )
            if await _sent(producer, "registry.commands", command, f"{load.team}/{model}"):
                load.commands[command.id] = (model, version)
                load.versions.append((model, version))
            if sequence % 5 == 4 and load.versions:  # on a version sent a while ago: applied, or not_found
                await _report(producer, token, load, load.versions[max(0, len(load.versions) - 20)], sequence)
            sequence += 1
            await asyncio.sleep(max(0.0, started + sequence / rate - time.monotonic()))
    finally:
        await producer.stop()


async def _report(producer: AIOKafkaProducer, token: str, load: _Load, target: tuple[str, str], n: int) -> None:
    model, version = target
    report = CloudEvent(
        source="/chaos",
        type=messages.DEPLOY_STATUS_REPORTED,
        sign_with=token,
        data={
            "team": load.team,
            "name": model,
            "version": version,
            "environment": f"env{n}",  # a fresh environment each time: the first report applies
            "status": "deploying",
            "occurred_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        },
    )
    if await _sent(producer, "deploy.events", report, f"{load.team}/{model}"):
        load.reports.add(report.id)


async def _sent(producer: AIOKafkaProducer, topic: str, event: CloudEvent, key: str) -> bool:
    """Publish ``event``; whether the broker acknowledged it (only then does it count as sent)."""
    value, headers = event.to_kafka()
    try:
        await producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
    except Exception:
        return False
    return True


async def _kill_now_and_then(
    stack: EmbeddedStack, report: ChaosReport, *, until: float, every: tuple[float, float], victims: tuple[str, ...]
) -> None:
    turns = itertools.cycle(random.sample(victims, len(victims)))  # each service in turn
    while time.monotonic() < until:
        await asyncio.sleep(random.uniform(*every))
        victim = next(turns)
        process = stack.services[victim].process
        if process is not None and process.returncode is None and time.monotonic() < until:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            report.kills[victim] += 1


async def run_chaos(
    stack: EmbeddedStack,
    token: str,
    *,
    seconds: float,
    rate: float = 20.0,
    kill_every: tuple[float, float] = (4.0, 10.0),
    victims: tuple[str, ...] = CONSUMERS,
    drain_timeout: float = 180.0,
    say: Callable[[str], None] = lambda _: None,
) -> ChaosReport:
    """Load the stack for ``seconds`` while killing ``victims``; then drain and judge (see the module)."""
    report = ChaosReport(seconds=seconds)
    load = _Load(team=f"chaos-{uuid.uuid4().hex[:6]}")
    outcomes = _Outcomes(stack.settings.kafka_bootstrap)
    await outcomes.start()
    stopping = asyncio.Event()
    # Kills here are the test, not a crash loop: restart every time, quickly.
    supervisor = stack.supervisor(say, max_restarts=1_000_000, backoff=0.5, backoff_max=2.0)
    supervising = asyncio.create_task(supervisor.run(stopping, poll=0.2))
    until = time.monotonic() + seconds
    try:
        await asyncio.gather(
            _produce(stack, token, load, rate=rate, until=until, models=50),
            _kill_now_and_then(stack, report, until=until, every=kill_every, victims=victims),
        )
        drained_at = time.monotonic()
        expected = set(load.commands) | load.reports
        while time.monotonic() - drained_at < drain_timeout:
            if expected <= set(outcomes.by_cause):
                break
            await asyncio.sleep(0.5)
        report.drain_seconds = time.monotonic() - drained_at
        await asyncio.sleep(2.0)  # a second outcome, if any, has time to show up
    finally:
        stopping.set()
        await supervising
        await outcomes.stop()
    report.commands_sent, report.reports_sent = len(load.commands), len(load.reports)
    judged = {cause: outcomes.by_cause.get(cause, set()) for cause in set(load.commands) | load.reports}
    report.outcomes = sum(1 for found in judged.values() if found)
    report.lost = sum(1 for found in judged.values() if not found)
    report.doubled = sum(1 for found in judged.values() if len(found) > 1)
    report.restarts = dict(supervisor.restarts)
    await _judge_reads(stack, token, load, report)
    await _judge_audit(stack, load, report)
    return report


async def _judge_reads(stack: EmbeddedStack, token: str, load: _Load, report: ChaosReport) -> None:
    """Every version whose registration succeeded must be listed by the query service."""
    registered: dict[str, set[str]] = defaultdict(set)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    try:
        outbox = client[service_database("registration")]["outbox"]
        async for row in outbox.find(
            {"type": messages.MODEL_VERSION_REGISTERED, "team": load.team}, {"data.name": 1, "data.version": 1}
        ):
            registered[row["data"]["name"]].add(row["data"]["version"])
    finally:
        await client.close()
    async with httpx.AsyncClient(
        base_url=stack.url("query"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for model, versions in registered.items():
            listed: set[str] = set()
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                page = (await http.get(f"/v1/models/{load.team}/{model}/versions", params=params)).json()
                listed |= {item["version"] for item in page.get("items", [])}
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            report.not_readable += len(versions - listed)


async def _judge_audit(stack: EmbeddedStack, load: _Load, report: ChaosReport) -> None:
    """Every acknowledged record has exactly one audit entry (once the audit log has caught up)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.audit_mongodb_uri, tz_aware=True)
    wanted = set(load.commands) | load.reports
    try:
        log = client[service_database("audit")]["audit_log"]
        deadline = time.monotonic() + 120
        while True:
            found: Counter[str] = Counter()
            positions: Counter[tuple[str, int, int]] = Counter()
            async for entry in log.find(
                {"topic": {"$in": ["registry.commands", "deploy.events"]}, "team": load.team},
                {"ce_id": 1, "topic": 1, "partition": 1, "offset": 1},
            ):
                found[entry["ce_id"]] += 1
                positions[(entry["topic"], entry["partition"], entry["offset"])] += 1
            if wanted <= set(found) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
    finally:
        await client.close()
    report.audit_lost = len(wanted - set(found))
    report.audit_doubled = sum(1 for count in positions.values() if count > 1)
