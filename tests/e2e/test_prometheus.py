"""A real Prometheus scrapes the running stack: every target up, the rules loaded, registrations counted."""

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY, binary_record, register_event
from tests.kafka_tools import publish_raw
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules" / "registry-alerts.yml"
JOBS = {"registration", "query", "deploy-tracker", "audit"}


def alert_expr(name: str) -> str:
    """The expression of alert ``name`` as the rules file has it."""
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    [expr] = [rule["expr"] for rule in rules if rule.get("alert") == name]
    return str(expr)


async def test_prometheus_counts_the_registrations_made_here(stack: EmbeddedStack) -> None:
    await stack.start_prometheus()
    try:
        async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as prom:

            async def instant(query: str) -> list[dict[str, Any]]:
                body = (await prom.get("/api/v1/query", params={"query": query})).json()
                assert body["status"] == "success", body
                return list(body["data"]["result"])

            async def rules() -> list[dict[str, Any]]:
                groups = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
                return [rule for group in groups for rule in group["rules"]]

            async def all_up() -> list[dict[str, Any]] | None:
                targets = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
                return targets if len(targets) == 4 and all(t["health"] == "up" for t in targets) else None

            targets = await until(all_up, timeout=60, what="all four targets scraped and up")
            assert {t["labels"]["job"] for t in targets} == JOBS
            [down] = [rule for rule in await rules() if rule["name"] == "RegistryServiceDown"]
            evaluated_before_up = down.get("lastEvaluation")

            team = f"p{uuid.uuid4().hex[:10]}"
            commands = [register_event(team, "ranker", f"0.{n}.0", token=ADMIN_KEY.token) for n in range(4)]
            await publish_raw(
                stack.settings.kafka_bootstrap,
                "registry.commands",
                [(*binary_record(c), f"{team}/ranker".encode()) for c in commands],
            )

            async def counted() -> bool:
                result = await instant(f'sum(registry_registrations_total{{team="{team}"}})')
                return bool(result) and float(result[0]["value"][1]) == 4

            await until(counted, timeout=60, what="Prometheus counting the 4 registrations")

            loaded = await rules()
            assert {"RegistryServiceDown", "RegistryOutboxStale", "RegistryConsumerLagGrowing"} <= {
                rule["name"] for rule in loaded
            }
            assert all(rule["health"] == "ok" for rule in loaded), [r for r in loaded if r["health"] != "ok"]

            # RegistryServiceDown waits 1m before firing, so "not firing" alone proves nothing here:
            # the rule has been evaluated with every target up, its expression selects all four
            # services' `up` series and is false for each, and the alert is neither pending nor firing.
            async def evaluated_since_up() -> dict[str, Any] | None:
                [rule] = [rule for rule in await rules() if rule["name"] == "RegistryServiceDown"]
                return rule if rule.get("lastEvaluation") != evaluated_before_up else None

            down = await until(evaluated_since_up, what="RegistryServiceDown evaluated after all targets were up")
            assert (down["state"], down["alerts"]) == ("inactive", []), down
            expr = alert_expr("RegistryServiceDown")
            assert await instant(expr) == [], f"{expr} holds for some series"
            selector, _, threshold = expr.rpartition(" == ")
            assert threshold == "0", expr
            watched = {s["metric"]["job"]: s["value"][1] for s in await instant(selector)}
            assert watched == dict.fromkeys(JOBS, "1"), f"{selector} selects {watched}"
            alerts = (await prom.get("/api/v1/alerts")).json()["data"]["alerts"]
            assert not [a for a in alerts if a["labels"]["alertname"] == "RegistryServiceDown"], alerts
    finally:
        await stack.stop_prometheus()
