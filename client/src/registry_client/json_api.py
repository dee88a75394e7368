"""Any route of the registry's API as JSON, sent with one caller's credentials.

What the MCP tools and the query's web console call the API with: they forward the key of the
person or assistant they serve, so they get the same routes, team isolation, rate limits and
access events as any HTTP client. Refusals are the client's own :class:`RegistryError` classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from registry_client.consistency import CONSISTENCY_HEADER
from registry_client.errors import RegistryError, problem_error

Params = Mapping[str, str | int | None]


class JsonApi:
    """Requests to one service's API over ``client``, each with ``headers`` (the caller's key, …)."""

    def __init__(self, client: httpx.AsyncClient, *, headers: Mapping[str, str]) -> None:
        self.client, self.headers = client, {"Accept": "application/json", **headers}
        self.consistency: str | None = None  # the consistency token of the last write answered

    async def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """The JSON object of a 2xx answer; otherwise the :class:`RegistryError` of the refusal."""
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = await self.client.get(path, params=query, headers=self.headers)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if not response.is_success:
            raise problem_error(response)
        return _object(response, f"GET {path}")

    async def send(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """A write: the JSON object answered (``{}`` for 204), else the :class:`RegistryError` of the refusal."""
        try:
            response = await self.client.request(method, path, json=body, headers={**self.headers, **(headers or {})})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if not response.is_success:
            raise problem_error(response)
        self.consistency = response.headers.get(CONSISTENCY_HEADER)
        return {} if response.status_code == 204 or not response.content else _object(response, f"{method} {path}")

    def _unreachable(self, exc: httpx.HTTPError) -> RegistryError:
        return RegistryError(f"the registry at {self.client.base_url} did not answer ({exc!r})")


def _object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise RegistryError(f"{what} did not answer JSON", status=response.status_code) from None
    if not isinstance(body, dict):
        raise RegistryError(f"{what} answered {type(body).__name__}, not an object", status=response.status_code)
    return body
