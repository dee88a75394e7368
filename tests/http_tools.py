"""HTTP helpers of the end-to-end tests: a team's key from the bootstrap admin, a client acting with a key."""

from __future__ import annotations

import httpx

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY.token}"}


async def team_key(stack: EmbeddedStack, team: str, scopes: list[str], *, name: str = "tests") -> str:
    """The token of a new key of ``team`` with ``scopes``, made by the bootstrap admin over HTTP."""
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        response = await http.post(f"/v1/teams/{team}/api-keys", json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def acting_as(stack: EmbeddedStack, service: str, token: str, *, timeout: float = 30) -> httpx.AsyncClient:
    """A client of ``service`` that sends ``token`` on every request."""
    return httpx.AsyncClient(base_url=stack.url(service), headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
