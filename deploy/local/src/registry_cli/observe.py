"""A real Prometheus over the local stack, with the alert rules every environment uses."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from registry_cli.config import StackSettings

# deploy/local/src/registry_cli/observe.py -> deploy/prometheus
PROMETHEUS_DIR = Path(__file__).resolve().parents[3] / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"


class PrometheusMissing(RuntimeError):
    """No Prometheus binary where the settings say."""


def prometheus_config(settings: StackSettings) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the local services' ports as targets."""
    return {
        "global": {
            "scrape_interval": settings.prometheus_scrape_interval,
            "evaluation_interval": settings.prometheus_scrape_interval,
            "external_labels": {"system": "model-registry", "environment": "local"},
        },
        "rule_files": [str(RULES_DIR / "*.yml")],
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [f"{settings.host}:{port}"]}]}
            for name, port in settings.service_ports().items()
        ],
    }


def prometheus_argv(settings: StackSettings) -> list[str]:
    """Write the local config under the data directory; return the command that serves it."""
    binary = shutil.which(settings.prometheus_bin)
    if binary is None:
        raise PrometheusMissing(
            f"{settings.prometheus_bin!r} is not installed: `apt-get install prometheus` (Debian) "
            "or set REGISTRY_PROMETHEUS_BIN to a Prometheus binary"
        )
    home = settings.data_dir / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(settings), sort_keys=False))
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={settings.host}:{settings.prometheus_port}",
        "--log.level=warn",
    ]
