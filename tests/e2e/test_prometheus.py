"""A real Prometheus scrapes the running stack: every target up, the rules loaded, registrations counted."""

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.kafka_tools import publish_raw

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _until(probe: Any, *, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_prometheus_counts_the_registrations_made_here(stack: EmbeddedStack) -> None:
    await stack.start_prometheus()
    try:
        async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as prom:

            async def all_up() -> list[dict[str, Any]] | None:
                targets = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
                return targets if len(targets) == 4 and all(t["health"] == "up" for t in targets) else None

            targets = await _until(all_up)
            assert targets, (await prom.get("/api/v1/targets")).text
            assert {t["labels"]["job"] for t in targets} == {"registration", "query", "deploy-tracker", "audit"}

            team = f"p{uuid.uuid4().hex[:10]}"
            commands = [register_event(team, "ranker", f"0.{n}.0", token=ADMIN_KEY.token) for n in range(4)]
            await publish_raw(
                stack.settings.kafka_bootstrap,
                "registry.commands",
                [(*binary_record(c), f"{team}/ranker".encode()) for c in commands],
            )

            async def counted() -> float | None:
                query = f'sum(registry_registrations_total{{team="{team}"}})'
                result = (await prom.get("/api/v1/query", params={"query": query})).json()["data"]["result"]
                value = float(result[0]["value"][1]) if result else 0.0
                return value if value == 4 else None

            assert await _until(counted) == 4

            rules = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
            names = {rule["name"] for group in rules for rule in group["rules"]}
            assert {"RegistryServiceDown", "RegistryOutboxStale", "RegistryConsumerLagGrowing"} <= names
            assert all(rule["health"] == "ok" for group in rules for rule in group["rules"])
            firing = (await prom.get("/api/v1/alerts")).json()["data"]["alerts"]
            assert not [a for a in firing if a["labels"]["alertname"] == "RegistryServiceDown"]
    finally:
        assert stack.prometheus is not None
        await stack.prometheus.stop(grace=5)
        stack.prometheus = None
