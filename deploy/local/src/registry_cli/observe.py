"""A real Prometheus and Alertmanager over the local stack, with the rules and routes every environment uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from registry_cli.config import StackSettings
from registry_cli.processes import installed

# deploy/local/src/registry_cli/observe.py -> deploy/prometheus
PROMETHEUS_DIR = Path(__file__).resolve().parents[3] / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
ALERTMANAGER_DIR = PROMETHEUS_DIR.parent / "alertmanager"
# Local timings: a test or a demo sees a notification seconds after Prometheus fires, not minutes.
LOCAL_TIMINGS = {"group_wait": "1s", "group_interval": "5s", "repeat_interval": "1h"}


def prometheus_config(settings: StackSettings, rules_dir: Path = RULES_DIR) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the local services' ports as targets.

    ``rules_dir`` is where the alert rules are read from: every environment's, unless a test
    evaluates a copy with shorter waits.
    """
    return {
        "global": {
            "scrape_interval": settings.prometheus_scrape_interval,
            "evaluation_interval": settings.prometheus_scrape_interval,
            "external_labels": {"system": "model-registry", "environment": "local"},
        },
        "rule_files": [str(rules_dir / "*.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{settings.host}:{settings.alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": name,
                "static_configs": [{"targets": [f"{settings.host}:{port}"]}],
                **(
                    {"scheme": "https", "tls_config": {"ca_file": str((settings.tls_dir / "ca.pem").resolve())}}
                    if settings.tls
                    else {}
                ),
            }
            for name, port in settings.service_ports().items()
        ],
    }


def prometheus_argv(settings: StackSettings, rules_dir: Path = RULES_DIR) -> list[str]:
    """Write the local config under the data directory; return the command that serves it."""
    binary = installed([settings.prometheus_bin], "prometheus", StackSettings.env_name("prometheus_bin"))
    home, config = _written(settings.data_dir / "prometheus", "prometheus.yml", prometheus_config(settings, rules_dir))
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={settings.host}:{settings.prometheus_port}",
        "--log.level=warn",
    ]


def alertmanager_config(settings: StackSettings) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml with local receivers and timings; routes and inhibitions kept.

    Each receiver keeps its name and posts to ``<alert_webhook_url>/<receiver>`` (when set), so
    what a local receiver gets shows which route the production configuration would take.
    """
    config: dict[str, Any] = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    config["global"] = {"resolve_timeout": config["global"]["resolve_timeout"]}  # no secret files locally
    config["templates"] = [str(ALERTMANAGER_DIR / "templates" / "*.tmpl")]
    _use_local_timings(config["route"], top=True)
    url = settings.alert_webhook_url
    config["receivers"] = [
        {
            "name": r["name"],
            **({"webhook_configs": [{"url": f"{url.rstrip('/')}/{r['name']}", "send_resolved": True}]} if url else {}),
        }
        for r in config["receivers"]
    ]
    return config


def _use_local_timings(route: dict[str, Any], *, top: bool = False) -> None:
    for timing in LOCAL_TIMINGS:
        route.pop(timing, None)
    if top:
        route.update(LOCAL_TIMINGS)
    for child in route.get("routes", []):
        _use_local_timings(child)


def alertmanager_argv(settings: StackSettings) -> list[str]:
    """Write the local Alertmanager config under the data directory; return the command that serves it."""
    names = [settings.alertmanager_bin, "alertmanager"]  # Debian's name, then upstream's
    binary = installed(names, "prometheus-alertmanager", StackSettings.env_name("alertmanager_bin"))
    home, config = _written(settings.data_dir / "alertmanager", "alertmanager.yml", alertmanager_config(settings))
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address={settings.host}:{settings.alertmanager_port}",
        "--cluster.listen-address=",  # no gossip port: one local instance, and nothing off loopback
        "--log.level=warn",
        "--log.format=json",
    ]


def _written(home: Path, name: str, config: dict[str, Any]) -> tuple[Path, Path]:
    """``config`` as YAML in ``home``/``name`` (created); the directory and the file."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return home, path
