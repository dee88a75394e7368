"""RFC 9457 problem+json responses every HTTP service uses (the correlation id is bound in shared.http_app)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import correlation

PROBLEM_JSON = "application/problem+json"
# Statuses raised by the framework itself (unknown route, wrong method) or by the body limit
# (shared.request_bounds): reason code of the problem type, and title.
_HTTP_PROBLEMS = {
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("too_large", "Content too large"),
}
CORRELATION_HEADER = "X-Correlation-ID"


class Problem(Exception):
    """An HTTP error to be rendered as problem+json."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.type = status, title, detail, type_
        self.errors, self.headers = errors, headers or {}


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
    reason, title = _HTTP_PROBLEMS.get(status, (None, detail))
    return Problem(status, title, detail, type_=f"urn:registry:problem:{reason}" if reason else "about:blank")


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    return [{"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")} for err in errors]


def install(app: FastAPI) -> None:
    """Attach the problem+json exception handlers to ``app``."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            Problem(
                422,
                "Invalid request",
                "the request does not match the schema",
                type_="urn:registry:problem:invalid",
                errors=_clean_errors(exc.errors()),
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(status_problem(exc.status_code, str(exc.detail)))
