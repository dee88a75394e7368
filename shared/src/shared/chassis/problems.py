"""RFC 9457 problem+json responses every HTTP service uses (the correlation id is bound in shared.chassis.http_app)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry_contract import correlation
from shared.chassis import route_owners

PROBLEM_JSON = "application/problem+json"
CORRELATION_HEADER = "X-Correlation-ID"
PROBLEM_TYPE_PREFIX = "urn:registry:problem:"

# The one catalogue of refusals: each reason is a Kafka ``command_rejected`` reason (the first
# ten, :data:`registry_contract.messages.RejectReason`) or an HTTP-only one, and has one status and title.
ProblemReason = Literal[
    "invalid",
    "unauthenticated",
    "forbidden",
    "duplicate_version",
    "not_found",
    "conflict",
    "rate_limited",
    "not_approved",
    "bad_signature",
    "unsigned",
    "method_not_allowed",
    "too_large",
    "not_ready",
    "unavailable",
    "internal",
]
CATALOGUE: dict[ProblemReason, tuple[int, str]] = {
    "invalid": (422, "Invalid request"),
    "unauthenticated": (401, "Unauthenticated"),
    "forbidden": (403, "Forbidden"),
    "duplicate_version": (409, "Duplicate version"),
    "not_found": (404, "Not found"),
    "conflict": (409, "Conflict"),
    "rate_limited": (429, "Too many requests"),
    "not_approved": (409, "Version not approved"),
    "bad_signature": (422, "Bad signature"),
    "unsigned": (409, "Version not signed"),
    "method_not_allowed": (405, "Method not allowed"),
    "too_large": (413, "Content too large"),
    "not_ready": (503, "Not ready"),
    "unavailable": (503, "Service unavailable"),
    "internal": (500, "Internal error"),
}
_BY_STATUS: dict[int, ProblemReason] = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class Problem(Exception):
    """A refusal to be rendered as problem+json; its status, title and type follow from ``reason``."""

    def __init__(
        self,
        reason: ProblemReason,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail
        self.status, self.title = CATALOGUE[reason]
        self.type = PROBLEM_TYPE_PREFIX + reason
        self.errors, self.headers = errors, headers or {}


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = Field(examples=[PROBLEM_TYPE_PREFIX + "not_found"])
    title: str
    status: int
    detail: str
    correlation_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def documented(*reasons: ProblemReason) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route or router: the refusals of ``reasons`` with their problem+json body."""
    schema = {"$ref": "#/components/schemas/" + ProblemDetails.__name__}
    return {
        CATALOGUE[reason][0]: {
            "model": ProblemDetails,
            "description": CATALOGUE[reason][1],
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for reason in reasons
    }


def keyed_route_refusals(*more: ProblemReason) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route behind an API key: no key, a missing scope, over the rate, and ``more``.

    And 503: a credential that cannot be checked while registration is away (retry), as any
    request whose dependency is away.
    """
    return documented("unauthenticated", "forbidden", "rate_limited", "unavailable", *more)


def problem_response(problem: Problem) -> JSONResponse:
    """Render ``problem`` with the current correlation id."""
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "correlation_id": correlation.current(),
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def status_problem(status: int, detail: str) -> Problem:
    """The problem of an HTTP status the framework (or the body limit) answers with."""
    return Problem(_BY_STATUS.get(status, "invalid" if status < 500 else "internal"), detail)


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    return [{"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")} for err in errors]


def install(app: FastAPI, *, service: str | None = None) -> None:
    """Attach the problem+json exception handlers to ``app``.

    With ``service`` (its name), a request for a route it does not serve (404, or 405 for another
    method) is told so, and which service serves it when another does.
    """

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            Problem("invalid", "the request does not match the schema", errors=_clean_errors(exc.errors()))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if service is not None and exc.status_code in (404, 405):  # the router's: no route for this request
            detail = route_owners.unserved(service, request.method, request.url.path)
        return problem_response(status_problem(exc.status_code, detail))
