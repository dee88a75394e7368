"""The Alertmanager configuration passes amtool, routes by team and severity, and its local variant is valid."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from registry_cli.observe import ALERTMANAGER_DIR, alertmanager_argv
from tests.throwaway import throwaway_settings

pytestmark = pytest.mark.deploy
AMTOOL = shutil.which("amtool")
CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"


def amtool(*args: str) -> str:
    assert AMTOOL, "amtool is missing: `apt-get install prometheus-alertmanager` (`make test` installs it)"
    done = subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def with_repository_templates(tmp_path: Path) -> Path:
    """The configuration with its templates read from the repository (as mounted in production)."""
    config = yaml.safe_load(CONFIG.read_text())
    assert config["templates"] == ["/etc/alertmanager/templates/*.tmpl"]
    config["templates"] = [str(ALERTMANAGER_DIR / "templates" / "*.tmpl")]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_configuration_and_its_templates_are_valid(tmp_path: Path) -> None:
    checked = amtool("check-config", str(with_repository_templates(tmp_path)))
    assert "SUCCESS" in checked and "2 inhibit rules" in checked and "5 receivers" in checked


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            "alertname=RegistryServiceDown severity=critical team=ml-platform",
            "incident-webhook,platform-pager,platform-chat",
        ),
        ("alertname=RegistryHighLatency severity=warning team=ml-platform", "incident-webhook,platform-chat"),
        ("alertname=RegistryForgedEvents severity=critical team=security", "incident-webhook,security-pager"),
        ("alertname=RegistryForgedEvents severity=warning team=security", "incident-webhook,security-chat"),
        ("alertname=SomethingElse", "incident-webhook"),  # unlabelled: nobody is woken, the timeline has it
    ],
)
def test_alerts_are_routed_by_team_then_severity(labels: str, receivers: str) -> None:
    assert amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels.split()).strip() == receivers


def test_no_secret_is_written_in_the_configuration() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    for receiver in config["receivers"]:
        for pager in receiver.get("pagerduty_configs", []):
            assert set(pager) & {"routing_key", "service_key"} == set() and pager["routing_key_file"]
        for hook in receiver.get("webhook_configs", []):
            assert hook["http_config"]["authorization"]["credentials_file"]
    assert "slack_api_url" not in config["global"] and config["global"]["slack_api_url_file"]


def test_every_alert_rule_has_a_team_and_severity_the_routes_know() -> None:
    rules_file = ALERTMANAGER_DIR.parent / "prometheus" / "rules" / "registry-alerts.yml"
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert len(alerts) >= 12
    for rule in alerts:
        assert rule["labels"]["team"] in {"ml-platform", "security"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]


def test_the_local_config_written_by_registry_up_is_valid(tmp_path: Path) -> None:
    settings = throwaway_settings(tmp_path, alert_webhook_url="http://127.0.0.1:9/alerts")
    argv = alertmanager_argv(settings)
    config = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--config.file="))
    assert "SUCCESS" in amtool("check-config", config)
    assert "--cluster.listen-address=" in argv  # no gossip listener on every interface
    local = yaml.safe_load(Path(config).read_text())
    assert local["inhibit_rules"] == yaml.safe_load(CONFIG.read_text())["inhibit_rules"]
    assert {r["webhook_configs"][0]["url"] for r in local["receivers"]} == {
        f"http://127.0.0.1:9/alerts/{name}"
        for name in ("incident-webhook", "platform-pager", "platform-chat", "security-pager", "security-chat")
    }
