"""Metrics every service exports, and the helpers that keep their label sets bounded.

Labels never carry model names, ids or free text: a label value is a team, a framework, a
reason, a topic, a partition number, a route template or a ``ce_type`` of the contract
(anything else is counted as ``other``). ``docs/operations.md`` lists every metric.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram, Info

from registry_contract import messages

BUILD = Info("registry_build", "Version of the running service and of what it runs on")
MESSAGES_CONSUMED = Counter(
    "registry_messages_consumed_total",
    "Kafka records handled by a consumer group, by topic, ce_type and outcome (processed or failed)",
    ["group", "topic", "type", "outcome"],
)
BATCH_SECONDS = Histogram(
    "registry_consumer_batch_seconds",
    "Time to handle and commit one batch of Kafka records, by consumer group",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_BATCHES_RETRIED = Counter(
    "registry_consumer_batches_retried_total",
    "Batches sought back and retried because a dependency (MongoDB, Kafka) was unavailable",
    ["group"],
)
HTTP_REQUESTS = Counter(
    "registry_http_requests_total", "HTTP requests by method, route template and status", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "registry_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_LAG = Gauge(
    "registry_consumer_lag",
    "Records not yet committed by a consumer group: end offset minus committed offset",
    ["group", "topic", "partition"],
)
CONSUMER_STALLED = Gauge(
    "registry_consumer_stalled",
    "1 when a consumer group has lag and its committed offsets have not moved for CONSUMER_STALL_SECONDS",
    ["group"],
)
OUTBOX_BACKLOG = Gauge("registry_outbox_backlog", "Outbox events committed but not yet published", ["outbox"])
OUTBOX_OLDEST_AGE = Gauge(
    "registry_outbox_oldest_unsent_seconds",
    "Age of the oldest outbox event not yet published (0 when none)",
    ["outbox"],
)
OUTBOX_PARKED = Counter(
    "registry_outbox_parked_total",
    "Outbox events the broker refused for good (e.g. too large): parked, not published",
    ["outbox"],
)
OUTBOX_PUBLISHED = Counter("registry_outbox_published_total", "Outbox events published to Kafka", ["outbox"])
BACKGROUND_TASK_RESTARTS = Counter(
    "registry_background_task_restarts_total",
    "Background tasks restarted after they died (raised, or returned before shutdown), by task name",
    ["task"],
)
BACKGROUND_TASK_UP = Gauge(
    "registry_background_task_up",
    "1 while the background task runs; 0 from its death until its restarted run has lasted the settle time",
    ["task"],
)

_KNOWN_TYPES = frozenset(
    [
        *messages.COMMAND_TYPES,
        *messages.EVENT_MODELS,
        messages.COMMAND_REJECTED,
        messages.DEPLOY_STATUS_REPORTED,
        messages.ACCESS_READ,
        messages.ACCESS_WRITE,
        messages.ACCESS_DENIED,
        messages.ACCESS_AUTH_FAILED,
        messages.ACCESS_RATE_LIMITED,
    ]
)
UNROUTED = "unmatched"


def set_build_info(service: str) -> None:
    """Publish ``registry_build_info`` for this process."""
    try:
        version = metadata.version("shared")
    except metadata.PackageNotFoundError:
        version = "unknown"
    BUILD.info({"service": service, "version": version, "python": platform.python_version()})


def record_type(record: Any) -> str:
    """The record's ``ce_type`` header if it is one of the contract's types, else ``other``."""
    for key, value in record.headers or ():
        if key == "ce_type":
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return text if text in _KNOWN_TYPES else "other"
    return "other"


@contextlib.contextmanager
def observed_batch(group: str, records: Sequence[Any]) -> Iterator[None]:
    """Time one consumed batch, count its records by outcome, and put its position on log lines."""
    if records:
        first, last = records[0], records[-1]
        structlog.contextvars.bind_contextvars(
            group=group, topic=first.topic, partition=first.partition, offset=first.offset, last_offset=last.offset
        )
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "processed"
    finally:
        BATCH_SECONDS.labels(group).observe(time.perf_counter() - started)
        for record in records:
            MESSAGES_CONSUMED.labels(group, record.topic, record_type(record), outcome).inc()
        structlog.contextvars.unbind_contextvars("group", "topic", "partition", "offset", "last_offset")
