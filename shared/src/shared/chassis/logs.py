"""Structured logging: JSON lines with service and correlation id on every line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from registry_contract import correlation

SECRET_FIELDS = frozenset({"authorization", "api_key", "token", "secret", "password", "signing_secret"})
_KEY_PATTERN = re.compile(r"mr_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{8,}")


def describe(exc: BaseException, *, limit: int = 500) -> str:
    """Exception type and message, bounded, for log lines, stored errors and dead-letter headers."""
    return f"{type(exc).__name__}: {exc}"[:limit]


def redact_secrets(_logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: drop secret-named fields and mask anything shaped like an API key.

    Code never logs secrets on purpose; this catches the accident (an exception message quoting
    a header, a field added later) before it reaches a log pipeline.
    """
    for key in list(event):
        if key.lower() in SECRET_FIELDS:
            event[key] = "[redacted]"
        elif isinstance(event[key], str) and "mr_" in event[key]:
            event[key] = _KEY_PATTERN.sub("mr_[redacted]", event[key])
    return event


def add_correlation_id(_logger: object, _name: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """Stamp the line with the operation's correlation id (the contract keeps it; it knows no logger)."""
    current = correlation.current()
    if current is not None:
        event.setdefault("correlation_id", current)
    return event


def configure_logging(*, service: str, fmt: str = "auto", level: str = "INFO") -> None:
    """Route stdlib and structlog output through one JSON (or, on a terminal, console) renderer."""
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()) if console else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_correlation_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        lambda _logger, _name, event: {"service": service, **event},
        redact_secrets,
    ]
    structlog.configure(
        # Level first: a DEBUG line (every successful read) costs nothing unless DEBUG is on.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Tracebacks as text ("exception"), so a failure line says what failed and where.
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every rebalance and retry at INFO/WARNING; keep errors only.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every outgoing request's full URL at INFO: webhook URLs may carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # FastStream logs "Received"/"Processed" for every batch; the services log their own outcomes.
    logging.getLogger("registry.kafka").setLevel(logging.WARNING)
