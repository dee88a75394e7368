"""The Prometheus configs and alert rules pass promtool, and the rules' unit tests pass."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from registry_cli.observe import PROMETHEUS_DIR, prometheus_argv
from tests.throwaway import throwaway_settings

pytestmark = pytest.mark.deploy
ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> str:
    assert PROMTOOL, "promtool is missing: `apt-get install prometheus` (`make test` installs it)"
    done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "kubernetes.yml"])
def test_deployment_configs_are_valid(config: str) -> None:
    assert "SUCCESS" in promtool("check", "config", str(PROMETHEUS_DIR / config))


def test_the_local_config_written_by_registry_up_is_valid(tmp_path: Path) -> None:
    argv = prometheus_argv(throwaway_settings(tmp_path))
    config = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--config.file="))
    assert "SUCCESS" in promtool("check", "config", config)


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))))
    assert "SUCCESS" in promtool("test", "rules", str(PROMETHEUS_DIR / "tests" / "registry-alerts.test.yml"))


def _alerts() -> list[dict[str, object]]:
    rules = []
    for path in (PROMETHEUS_DIR / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return rules


def test_every_alert_is_unit_tested_and_has_a_runbook_entry() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "tests" / "registry-alerts.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    guide = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-")) for h in re.findall(r"^#+ (.+)$", guide, re.M)
    }
    for rule in _alerts():
        name = str(rule["alert"])
        assert name in tested, f"{name} has no promtool test that makes it fire"
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert name.lower() in anchors, f"docs/operations.md has no runbook section for {name}"
        labels = rule.get("labels", {})
        assert isinstance(labels, dict) and labels.get("severity") in {"critical", "warning"}
