"""Prometheus metrics of the registration service."""

from __future__ import annotations

from prometheus_client import Counter

COMMANDS = Counter(
    "registry_commands_total",
    "Commands handled, by type, outcome and reject reason",
    ["type", "outcome", "reason"],
)
REGISTRATIONS = Counter(
    "registry_registrations_total", "Model versions registered, by team and framework", ["team", "framework"]
)
REJECTIONS = Counter(
    "registry_rejections_total",
    "Commands rejected, by the sender's team (anonymous when unauthenticated) and reason",
    ["team", "reason"],
)
