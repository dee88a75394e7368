"""Helpers of the console tests: a browser-like HTTP client that signs in, and the tokens of a page."""

from __future__ import annotations

import re

import httpx

from registry_cli.stack import EmbeddedStack
from tests.http_tools import team_key, team_name

CONSOLE_SCOPES = ["models:read", "models:write", "models:approve", "deployments:write", "audit:read", "team:admin"]


def hidden(page: str, name: str) -> str:
    """The value of the hidden input ``name`` of an HTML page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} on the page"
    return found.group(1)


def console_client(stack: EmbeddedStack) -> httpx.AsyncClient:
    """A client of the query service that keeps cookies and does not follow redirects (the tests look at them)."""
    return httpx.AsyncClient(base_url=stack.url("query"), follow_redirects=False, timeout=30)


async def sign_in(http: httpx.AsyncClient, key: str, *, next_page: str | None = None) -> httpx.Response:
    """Fill in and send the sign-in form, as a browser would."""
    form = await http.get("/console/sign-in", params={"next": next_page} if next_page else None)
    assert form.status_code == 200, form.text
    fields = {"sign_in_token": hidden(form.text, "sign_in_token"), "next": hidden(form.text, "next"), "api_key": key}
    return await http.post("/console/sign-in", data=fields)


async def new_team(stack: EmbeddedStack, prefix: str, scopes: list[str] | None = None) -> tuple[str, str]:
    """A fresh team name and a key of it."""
    team = team_name(prefix)
    return team, await team_key(stack, team, scopes or CONSOLE_SCOPES)
