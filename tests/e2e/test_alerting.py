"""Alerts reach people: a real Prometheus with the rules, a real Alertmanager with the routes, a receiver here.

Alertmanager runs deploy/alertmanager/alertmanager.yml with local receivers and timings
(registry_cli.observe.alertmanager_config): every receiver keeps its name and posts to
``<receiver URL>/<receiver name>``, so what arrives where shows the production routing.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry_cli.observe import RULES_DIR
from registry_cli.stack import EmbeddedStack
from tests.waiting import serving, until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class Notifications:
    """Alertmanager webhook payloads received, by the receiver named in the path."""

    def __init__(self) -> None:
        self.by_receiver: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)

    async def endpoint(self, request: Request) -> Response:
        self.by_receiver[request.path_params["receiver"]].append(await request.json())
        return Response(status_code=200)

    def routes(self) -> list[Route]:
        return [Route("/{receiver}", self.endpoint, methods=["POST"])]

    def alerts(self, receiver: str, alertname: str, **labels: str) -> list[dict[str, Any]]:
        """Every alert named ``alertname`` with ``labels`` that ``receiver`` was sent, in order."""
        return [
            alert
            for payload in self.by_receiver[receiver]
            for alert in payload["alerts"]
            if alert["labels"].get("alertname") == alertname
            and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]

    def receivers_of(self, alertname: str, **labels: str) -> set[str]:
        """The receivers that were sent ``alertname`` (with ``labels``)."""
        return {receiver for receiver in list(self.by_receiver) if self.alerts(receiver, alertname, **labels)}


def rules_waiting(alertname: str, wait: str, into: Path) -> Path:
    """A copy of every environment's rules in which ``alertname`` fires after ``wait``, not its own wait.

    The rule's own wait is proven by promtool's unit tests (deploy/prometheus/tests); here a real
    Prometheus and Alertmanager prove the rest — the query, the labels, the routes — in seconds.
    """
    into.mkdir()
    for path in RULES_DIR.glob("*.yml"):
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alertname:
                    rule["for"] = wait
        (into / path.name).write_text(yaml.safe_dump(rules))
    return into


async def test_a_stopped_service_pages_the_platform_then_resolves_when_it_is_back(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    notes = Notifications()
    rules = rules_waiting("RegistryServiceDown", "10s", into=tmp_path / "rules")
    async with serving(notes.routes()) as port:
        await stack.start_prometheus(alert_webhook_url=f"http://127.0.0.1:{port}", rules_dir=rules)
        try:
            async with httpx.AsyncClient(base_url=stack.prometheus_url, timeout=10) as prom:

                async def all_up() -> bool:
                    targets = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
                    return len(targets) == 4 and all(t["health"] == "up" for t in targets)

                await until(all_up, timeout=60, what="all four targets scraped and up")
            tracker = stack.services["deploy-tracker"]
            await tracker.stop()
            try:
                down = {"job": "deploy-tracker", "severity": "critical", "team": "ml-platform"}

                async def paged() -> list[dict[str, Any]]:
                    return [a for a in notes.alerts("platform-pager", "RegistryServiceDown", **down) if _firing(a)]

                # The copy waits 10 s with the target down; scrapes and evaluations every 5 s.
                [alert] = await until(paged, timeout=150, what="RegistryServiceDown paged for deploy-tracker")
            finally:
                await tracker.start()
                await stack.wait_ready("deploy-tracker", 60)
            assert alert["annotations"]["runbook_url"] == "docs/operations.md#registryservicedown"
            # Critical goes to the pager, the operators' chat and the incident webhook; not to security.
            assert notes.receivers_of("RegistryServiceDown", **down) == {
                "platform-pager",
                "platform-chat",
                "incident-webhook",
            }

            async def resolved() -> bool:
                sent = notes.alerts("platform-pager", "RegistryServiceDown", **down)
                return any(a["status"] == "resolved" for a in sent)

            await until(resolved, timeout=90, what="RegistryServiceDown resolved once deploy-tracker is back")
        finally:
            await stack.stop_prometheus()


async def test_symptoms_of_a_down_service_are_held_back_and_teams_get_their_own_alerts(stack: EmbeddedStack) -> None:
    # Alerts posted to the real Alertmanager as Prometheus would; the jobs are made up, so no rule
    # evaluated meanwhile can confirm or resolve them.
    notes = Notifications()
    async with serving(notes.routes()) as port:
        await stack.start_prometheus(alert_webhook_url=f"http://127.0.0.1:{port}")
        try:
            now = datetime.now(UTC)
            window = {"startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
            platform = {"team": "ml-platform", "severity": "critical"}
            not_ready = {"alertname": "RegistryNotReady", "dependency": "kafka", **platform}
            alerts = [
                {"labels": {"alertname": "RegistryServiceDown", "job": "probe-down", "instance": "a", **platform}},
                {"labels": {**not_ready, "job": "probe-down", "instance": "a"}},  # the down replica: held back
                {"labels": {**not_ready, "job": "probe-down", "instance": "b"}},  # another replica: not
                {"labels": {**not_ready, "job": "probe-up", "instance": "a"}},
                {
                    "labels": {
                        "alertname": "RegistryForgedEvents",
                        "job": "probe-up",
                        "team": "security",
                        "severity": "warning",
                    }
                },
            ]
            async with httpx.AsyncClient(base_url=stack.alertmanager_url, timeout=10) as alertmanager:
                posted = await alertmanager.post("/api/v2/alerts", json=[alert | window for alert in alerts])
                assert posted.status_code == 200, posted.text

                async def delivered() -> bool:
                    return bool(
                        notes.alerts("platform-pager", "RegistryNotReady", job="probe-up")
                        and notes.alerts("platform-pager", "RegistryNotReady", job="probe-down", instance="b")
                        and notes.alerts("security-chat", "RegistryForgedEvents")
                        and notes.alerts("platform-pager", "RegistryServiceDown", job="probe-down")
                    )

                await until(delivered, timeout=30, what="the uninhibited alerts delivered")
                inhibited = (await alertmanager.get("/api/v2/alerts", params={"inhibited": "true"})).json()
            held = [(a["labels"]["job"], a["labels"]["instance"]) for a in inhibited if a["status"]["inhibitedBy"]]
            assert held == [("probe-down", "a")]
            assert notes.receivers_of("RegistryNotReady", job="probe-down", instance="a") == set()
            assert notes.receivers_of("RegistryForgedEvents") == {"security-chat", "incident-webhook"}
        finally:
            await stack.stop_prometheus()


def _firing(alert: dict[str, Any]) -> bool:
    return bool(alert["status"] == "firing")
