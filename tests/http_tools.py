"""HTTP helpers of the end-to-end tests, written once: team names, keys, clients acting with a key, registrations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}
# The ``team`` fixture's keys: a writer that may do everything but approve, and an approver.
WRITER_SCOPES = ["models:read", "models:write", "team:admin", "deployments:write", "audit:read"]
APPROVER_SCOPES = ["models:read", "models:approve"]


@dataclass(frozen=True)
class Team:
    """A fresh team and the tokens of two of its keys (see :data:`WRITER_SCOPES`, :data:`APPROVER_SCOPES`)."""

    name: str
    writer: str
    approver: str


def team_name(prefix: str = "t") -> str:
    """A team name no other test uses, so tests never see each other's models."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_key(
    stack: EmbeddedStack, team: str, scopes: list[str], *, name: str = "tests", **fields: Any
) -> dict[str, Any]:
    """A new key of ``team``, made by the bootstrap admin over HTTP, as answered (``token``, ``key_id``, …).

    ``fields`` go into the request beside ``name`` and ``scopes`` (``rate_limit``, say).
    """
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        response = await http.post(f"/v1/teams/{team}/api-keys", json={"name": name, "scopes": scopes, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def team_key(stack: EmbeddedStack, team: str, scopes: list[str], *, name: str = "tests", **fields: Any) -> str:
    """The token of a new key of ``team`` with ``scopes`` (see :func:`make_key`)."""
    return str((await make_key(stack, team, scopes, name=name, **fields))["token"])


def acting_as(
    stack: EmbeddedStack, service: str, token: str, *, timeout: float = 30, for_team: str | None = None
) -> httpx.AsyncClient:
    """A client of ``service`` that sends ``token`` on every request (an OpenID Connect token: ``for_team``)."""
    headers = {"Authorization": f"Bearer {token}"} | ({"X-Registry-Team": for_team} if for_team else {})
    return httpx.AsyncClient(base_url=stack.url(service), headers=headers, timeout=timeout)


async def register(
    stack: EmbeddedStack,
    token: str,
    team: str,
    name: str,
    version: str = "1.0.0",
    *,
    expect: int | None = 201,
    for_team: str | None = None,
    **fields: Any,
) -> httpx.Response:
    """Register ``version`` of ``team``/``name`` over HTTP as ``token`` (``fields`` added to or replacing
    the body's); the answer, whose status is checked to be ``expect`` unless that is None."""
    body = {"version": version, "framework": "xgboost", "artifact_uri": f"s3://models/{team}/{name}/{version}"}
    async with acting_as(stack, "registration", token, for_team=for_team) as http:
        response = await http.post(f"/v1/models/{team}/{name}/versions", json=body | fields)
    if expect is not None:
        assert response.status_code == expect, response.text
    return response
