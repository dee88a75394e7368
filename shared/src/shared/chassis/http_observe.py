"""The outermost HTTP middleware: correlation id, the 500 of a bug, metrics, the log line, read events."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import Request, Response

from shared.chassis import metrics, problems
from shared.chassis.access import AccessLog
from shared.contract import correlation, messages

log = structlog.get_logger("registry.http")
Next = Callable[[Request], Awaitable[Response]]
_NOTEWORTHY_READ_STATUSES = frozenset({401, 403, 429})


async def observe(request: Request, call_next: Next) -> Response:
    """Answer the request, then count, log and (for a successful read) audit it."""
    started = time.perf_counter()
    # Bound here, in the outermost middleware, so the handlers' tasks, this middleware's own log
    # lines and the 500 below all carry the same id.
    correlation_id = correlation.bind(request.headers.get(problems.CORRELATION_HEADER))
    response = await _answer(request, call_next)
    response.headers[problems.CORRELATION_HEADER] = correlation_id
    # The route template (not the path) keeps the label set bounded: no model names in labels.
    route = getattr(request.scope.get("route"), "path", metrics.UNROUTED)
    seconds = time.perf_counter() - started
    metrics.HTTP_SECONDS.labels(request.method, route).observe(seconds)
    metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    _log(request, response, route, seconds)
    principal = getattr(request.state, "principal", None)
    if principal is not None and request.method == "GET" and response.status_code < 400:
        access: AccessLog = request.app.state.service.access
        access.record(
            messages.ACCESS_READ,
            principal=principal,
            method="GET",
            path=request.url.path,
            status=response.status_code,
            correlation_id=correlation_id,
        )
    return response


async def _answer(request: Request, call_next: Next) -> Response:
    try:
        return await call_next(request)
    except Exception:
        # A bug, not a refusal: answer problem+json like every other error, and count it as the
        # 500 it is (otherwise the error-rate alert would miss exactly these).
        log.exception("request failed", method=request.method, path=request.url.path)
        return problems.problem_response(
            problems.Problem("internal", "the request failed; it is logged with its correlation id")
        )


def _log(request: Request, response: Response, route: str, seconds: float) -> None:
    # Writes, denials and server errors at INFO; reads (the bulk of traffic, 404s included:
    # clients poll for what is not there yet) only at DEBUG.
    noteworthy = request.method != "GET" or response.status_code in _NOTEWORTHY_READ_STATUSES
    principal = getattr(request.state, "principal", None)
    log.log(
        logging.INFO if noteworthy or response.status_code >= 500 else logging.DEBUG,
        "request handled",
        method=request.method,
        route=route,
        status=response.status_code,
        ms=round(seconds * 1000, 1),
        team=principal.team if principal else None,
    )
