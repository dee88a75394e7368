"""Every metric a dashboard panel or an alert rule queries is one the running services export."""

import json
import re
from pathlib import Path

import pytest
import yaml

from registry_cli.stack import EmbeddedStack
from tests.metrics_tools import scrape

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
# Series that Prometheus itself makes, not the services.
PROMETHEUS_SERIES = {"up", "ALERTS"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (strings, matchers, ranges and groupings removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def dashboard_exprs() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                exprs.append(re.sub(r"^label_values\((.*), \w+\)$", r"\1", variable["query"]["query"]))
        found[path.name] = exprs
    return found


def rules() -> tuple[list[str], set[str]]:
    exprs, recorded = [], set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                exprs.append(rule["expr"])
                if "record" in rule:
                    recorded.add(rule["record"])
    return exprs, recorded


def test_the_expression_parser_finds_series_names() -> None:
    expr = 'sum by (job, le) (rate(a_bucket{route!~"/x|y"}[5m])) / b_total and on (job) c:rec > 0.5'
    assert metric_names(expr) == {"a_bucket", "b_total", "c:rec"}


async def test_dashboards_and_rules_query_only_exported_metrics(stack: EmbeddedStack) -> None:
    exported: set[str] = set()
    for service in ("registration", "query", "deploy-tracker", "audit"):
        _, families = await scrape(stack.url(service))
        exported |= families
    rule_exprs, recorded = rules()
    known = exported | PROMETHEUS_SERIES | recorded
    used = {name: {n for expr in exprs for n in metric_names(expr)} for name, exprs in dashboard_exprs().items()}
    used["alert rules"] = {n for expr in rule_exprs for n in metric_names(expr)}
    for where, names in used.items():
        assert names, f"{where} queries nothing"
        assert not names - known, f"{where} queries metrics no service exports: {sorted(names - known)}"
    # And the dashboards between them show every registry metric that exists.
    shown = set().union(*(names for where, names in used.items() if where != "alert rules"))
    registry_series = {n for n in exported if n.startswith("registry_") and not n.endswith(("_created",))}
    families_shown = {re.sub(r"_(bucket|count|sum)$", "", n) for n in shown}
    missing = {n for n in registry_series if re.sub(r"_(bucket|count|sum)$", "", n) not in families_shown}
    assert not missing, f"exported but on no dashboard: {sorted(missing)}"

    # The operations guide's metrics table lists exactly the registry metrics that exist.
    guide = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"^\| `(registry_\w+)` \|", guide, re.M))
    exported_families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in registry_series}
    assert documented == exported_families, (
        f"undocumented: {sorted(exported_families - documented)}; gone: {sorted(documented - exported_families)}"
    )


def test_dashboards_are_well_formed() -> None:
    assert {p.stem for p in DASHBOARDS} == {"overview", "service", "kafka-consumers", "security"}
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", f"{path.name}: {panel['title']}"
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
    assert len(uids) == len(DASHBOARDS)
