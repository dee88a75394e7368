"""The observing HTTP middleware: correlation id, the 500 of a bug, metrics, the log line, access events.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware`` (``app.middleware("http")``), which runs
every request in a task group and copies the response through a memory stream: that cost a
millisecond or more of every request, a large share of a read served from memory.
"""

from __future__ import annotations

import logging
import time

import structlog
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry_contract import correlation, messages
from registry_contract.auth import Principal
from shared.chassis import metrics, problems
from shared.chassis.access import AccessLog
from shared.chassis.consuming import is_transient
from shared.chassis.http_auth import Guard

log = structlog.get_logger("registry.http")
_NOTEWORTHY_READ_STATUSES = frozenset({401, 403, 429})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Observe:
    """Answer the request, then count, log and (for a successful read or write) audit it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Bound here, outside everything but CORS, so the handlers' tasks, this middleware's own log
        # lines and the 500 below all carry the same id.
        correlation_id = correlation.bind(Headers(scope=scope).get(problems.CORRELATION_HEADER))
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[problems.CORRELATION_HEADER] = correlation_id
                # The server's own time until the answer starts (W3C Server Timing): what a client's
                # round trip leaves out of the network, readable in browsers' developer tools. Only
                # on answers that succeeded: on a 404 it would be a cleaner clock for telling a
                # hidden model from an absent one than the round trip is.
                if status < 400:
                    headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status is not None:
                log.exception("request failed", method=scope["method"], path=scope["path"])
                raise  # the response had begun: nothing well-formed can be sent any more
            await _failure_response(scope, exc)(scope, receive, send_with_id)
        _record(scope, status or 500, time.perf_counter() - started, correlation_id)


def _failure_response(scope: Scope, exc: Exception) -> ASGIApp:
    """The problem+json answer to a request that raised ``exc``, counted as the 5xx it is.

    A dependency that is away (MongoDB, Kafka) is a 503 the caller may retry: the same request
    would succeed once it is back; anything else is a bug, a 500 (and the error-rate alert
    counts both: otherwise it would miss exactly these).
    """
    if is_transient(exc):
        log.warning("request failed: a dependency is unavailable", path=scope["path"], error_type=type(exc).__name__)
        problem = problems.Problem(
            "unavailable", "a service this request needs is unavailable; retry later", headers={"Retry-After": "5"}
        )
    else:
        log.exception("request failed", method=scope["method"], path=scope["path"], exc_info=exc)
        problem = problems.Problem("internal", "the request failed; it is logged with its correlation id")
    return problems.problem_response(problem)


def _record(scope: Scope, status: int, seconds: float, correlation_id: str) -> None:
    method = scope["method"]
    # The route template (not the path) keeps the label set bounded: no model names in labels.
    route = getattr(scope.get("route"), "path", metrics.UNROUTED)
    metrics.HTTP_SECONDS.labels(method, route).observe(seconds)
    metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
    principal: Principal | None = scope.get("state", {}).get("principal")
    _log(method, route, status, seconds, principal)
    if principal is None or status >= 400:
        return  # refusals are recorded where they are decided (the guard), with their reason
    state = scope["app"].state
    guard: Guard | None = getattr(state, "guard", None)
    if guard is not None and guard.recorded_by_caller(Headers(scope=scope)):
        return  # a console page's read of the API: the page view is the access recorded
    access: AccessLog = state.service.access
    if method == "GET":
        access.record(
            messages.ACCESS_READ,
            principal=principal,
            method="GET",
            path=scope["path"],
            status=status,
            correlation_id=correlation_id,
        )
    elif method in _WRITE_METHODS and isinstance(scope.get("route"), APIRoute):
        # A write of the API (keys, webhooks, shares, aliases, approvals, deletes, the HTTP bridges).
        # Not a protocol endpoint mounted as a plain route: the MCP transport POSTs JSON-RPC whose
        # tool calls are reads, each recorded as the read it runs.
        team = scope.get("path_params", {}).get("team")
        access.record(
            messages.ACCESS_WRITE,
            principal=principal,
            method=method,
            path=scope["path"],
            status=status,
            resource_team=team if isinstance(team, str) else None,
            correlation_id=correlation_id,
        )


def _log(method: str, route: str, status: int, seconds: float, principal: Principal | None) -> None:
    # Writes, denials and server errors at INFO; reads (the bulk of traffic, 404s included:
    # clients poll for what is not there yet) only at DEBUG.
    noteworthy = method != "GET" or status in _NOTEWORTHY_READ_STATUSES
    log.log(
        logging.INFO if noteworthy or status >= 500 else logging.DEBUG,
        "request handled",
        method=method,
        route=route,
        status=status,
        ms=round(seconds * 1000, 1),
        team=principal.team if principal else None,
    )
