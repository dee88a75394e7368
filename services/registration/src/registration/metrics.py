"""Prometheus metrics of the registration service."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

COMMANDS = Counter(
    "registry_commands_total",
    "Commands handled, by type, outcome and reject reason",
    ["type", "outcome", "reason"],
)
REGISTRATIONS = Counter(
    "registry_registrations_total", "Model versions registered, by team and framework", ["team", "framework"]
)
BATCH_SECONDS = Histogram(
    "registry_command_batch_seconds",
    "Time to handle and commit one batch of commands",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PUBLISHED = Counter("registry_outbox_published_total", "Outbox events published to Kafka")
