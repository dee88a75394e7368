"""The registry's refusals as exceptions: one class per problem type (``urn:registry:problem:<reason>``).

Every HTTP refusal is RFC 9457 problem+json; :func:`problem_error` reads one into the matching
class, so callers write ``except DuplicateVersion`` instead of comparing status codes and strings.
"""

from __future__ import annotations

from typing import Any

import httpx

from registry_client.retry import retry_after

PROBLEM_TYPE_PREFIX = "urn:registry:problem:"  # the services' problem catalogue names every type this way


class RegistryError(Exception):
    """A request the registry refused (or could not answer): the problem's fields as attributes."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        type: str | None = None,
        title: str | None = None,
        correlation_id: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {detail}" if status else detail)
        self.detail, self.status, self.type, self.title = detail, status, type, title
        self.correlation_id = correlation_id
        self.errors: list[dict[str, Any]] = errors or []

    @property
    def explanation(self) -> str:
        """The detail, with the fields a 422 names (``loc: msg``): what a person is shown."""
        fields = [
            f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}" for e in self.errors if isinstance(e, dict)
        ]
        return f"{self.detail}: {'; '.join(fields)}" if fields else self.detail

    @property
    def reason(self) -> str | None:
        """The problem's reason word (``not_found``, ``duplicate_version``…), the same as Kafka rejections use."""
        if self.type and self.type.startswith(PROBLEM_TYPE_PREFIX):
            return self.type.removeprefix(PROBLEM_TYPE_PREFIX)
        return None


class Unauthenticated(RegistryError):
    """401: no key, or a key that is unknown, revoked, expired or malformed (all look the same)."""


class Forbidden(RegistryError):
    """403: the key lacks the scope, or writes to another team's model."""


class NotFound(RegistryError):
    """404: absent, or another team's model that is not shared with yours (the two look the same)."""


class Conflict(RegistryError):
    """409: the change contradicts the current state (e.g. deleting a deployed version)."""


class DuplicateVersion(Conflict):
    """409: a version with the same SemVer precedence exists (build metadata does not count)."""


class NotApproved(Conflict):
    """409: the environment needs an approved version."""


class Unsigned(Conflict):
    """409: the environment needs a version with verified provenance (registered with a trusted signature)."""


class Invalid(RegistryError):
    """422: the request breaks the contract; ``errors`` lists the fields (``loc``, ``msg``, ``type``)."""


class BadSignature(Invalid):
    """422: no signing key the team trusts verifies the version's provenance signature."""


class RateLimited(RegistryError):
    """429 after the client's retries: ``retry_after`` is the server's advice in seconds."""

    def __init__(self, detail: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(detail, **fields)
        self.retry_after = retry_after


class WaitTimedOut(TimeoutError):
    """A write succeeded but its result was not readable on the query service in time."""

    def __init__(self, message: str, *, result: object) -> None:
        super().__init__(message)
        self.result = result  # what the write answered: it did happen


_BY_REASON: dict[str, type[RegistryError]] = {
    "unauthenticated": Unauthenticated,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "duplicate_version": DuplicateVersion,
    "not_approved": NotApproved,
    "unsigned": Unsigned,
    "invalid": Invalid,
    "bad_signature": BadSignature,
    "rate_limited": RateLimited,
}
_BY_STATUS: dict[int, type[RegistryError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: RateLimited,
}


def problem_error(response: httpx.Response) -> RegistryError:
    """The exception of an error response: by problem type, else by status (a proxy may answer plain text)."""
    body = _json_object(response)
    problem_type = body.get("type") if isinstance(body.get("type"), str) else None
    error = RegistryError(
        _detail(body, response),
        status=response.status_code,
        type=problem_type,
        title=body.get("title") if isinstance(body.get("title"), str) else None,
        correlation_id=body.get("correlation_id") or response.headers.get("X-Correlation-ID"),
        errors=body.get("errors") if isinstance(body.get("errors"), list) else None,
    )
    cls = _BY_REASON.get(error.reason or "") or _BY_STATUS.get(response.status_code, RegistryError)
    fields: dict[str, Any] = {
        "status": error.status,
        "type": error.type,
        "title": error.title,
        "correlation_id": error.correlation_id,
        "errors": error.errors,
    }
    if cls is RateLimited:
        return RateLimited(error.detail, retry_after=retry_after(response), **fields)
    return cls(error.detail, **fields)


MAX_DETAIL = 500  # characters of a refusal's detail kept: a proxy's error page can be any size


def _detail(body: dict[str, Any], response: httpx.Response) -> str:
    """The problem's detail (or title); from a proxy's plain-text answer its text; never an HTML page."""
    said = body.get("detail") or body.get("title")
    if not said and response.headers.get("content-type", "").startswith("text/plain"):
        said = response.text.strip()
    return str(said or response.reason_phrase or f"HTTP {response.status_code}")[:MAX_DETAIL]


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
