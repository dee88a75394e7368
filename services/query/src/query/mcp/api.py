"""The HTTP caller behind every MCP tool and console page: a registry API, with one caller's credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

Params = Mapping[str, str | int | None]


class RegistryApiError(Exception):
    """The read API refused a request (its problem's detail), or could not be reached."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status})" if status else detail)
        self.status, self.detail = status, detail


class RegistryApi:
    """Requests to one service's API, sent with the caller's ``Authorization`` (or ``X-API-Key``).

    The same routes, keys, team isolation, rate limits and access events as any HTTP client:
    neither the MCP tools nor the console read MongoDB themselves.
    """

    def __init__(self, client: httpx.AsyncClient, *, headers: Mapping[str, str]) -> None:
        self.client, self.headers = client, {"Accept": "application/json", **headers}
        self.consistency: str | None = None  # the X-Registry-Consistency of the last write answered

    async def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """The JSON object of a 2xx answer; otherwise :class:`RegistryApiError` with the problem's detail."""
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = await self.client.get(path, params=query, headers=self.headers)
        except httpx.HTTPError as exc:
            raise RegistryApiError(None, f"the registry at {self.client.base_url} did not answer ({exc!r})") from None
        if not response.is_success:
            raise RegistryApiError(response.status_code, _detail(response))
        return _object(response, f"GET {path}")

    async def send(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """A write: the JSON object answered (``{}`` for 204), else :class:`RegistryApiError` with the detail."""
        try:
            response = await self.client.request(method, path, json=body, headers={**self.headers, **(headers or {})})
        except httpx.HTTPError as exc:
            raise RegistryApiError(None, f"the registry at {self.client.base_url} did not answer ({exc!r})") from None
        if not response.is_success:
            raise RegistryApiError(response.status_code, _detail(response))
        self.consistency = response.headers.get("X-Registry-Consistency")
        return {} if response.status_code == 204 or not response.content else _object(response, f"{method} {path}")


def _object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise RegistryApiError(response.status_code, f"{what} did not answer JSON") from None
    if not isinstance(body, dict):
        raise RegistryApiError(response.status_code, f"{what} answered {type(body).__name__}, not an object")
    return body


def _detail(response: httpx.Response) -> str:
    """What a problem+json answer says went wrong, with the fields a 422 names."""
    try:
        problem = response.json()
    except ValueError:
        return response.reason_phrase or "the request failed"
    if not isinstance(problem, dict):
        return response.reason_phrase or "the request failed"
    detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    errors = problem.get("errors") or []
    fields = [f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg', '')}" for e in errors if isinstance(e, dict)]
    return f"{detail}: {'; '.join(fields)}" if fields else detail
