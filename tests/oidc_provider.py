"""A real OpenID Connect provider on loopback for the identity tests: ``oidc-provider-mock``.

It serves discovery, a JWKS, the authorization-code flow (with a form a browser fills in) and
the token endpoint, signing with an RSA key it makes at start. Any client id and secret are
accepted, and a user's claims are whatever the test puts (``PUT /users/{sub}``); so a pipeline's
token is an ID token whose audience is the client id it was asked for, carrying the claims a CI
provider would (``repository``, ``ref``…). Restarting it on the same port is a key rotation: a new
key with a new key id, the old one gone from its JWKS.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from registry_cli.config import free_port
from registry_cli.processes import Child
from tests.waiting import until

AUDIENCE = "model-registry"  # the audience the stack under test accepts (OIDC_AUDIENCES)
CALLBACK = "http://127.0.0.1/callback"  # where the provider sends the code; never fetched


def pipeline_subject(repository: str, ref: str = "refs/heads/main") -> str:
    """A CI job's subject, ``repo:<repository>:ref:<ref>`` as GitHub writes it, with ``/`` as ``|``.

    The provider's ``PUT /users/{sub}`` route cannot take a ``/`` in a subject; rules match on
    claims (``repository``, ``ref``), which keep theirs.
    """
    return f"repo:{repository}:ref:{ref}".replace("/", "|")


class OidcProvider:
    """One ``oidc-provider-mock`` process; :attr:`issuer` is what its tokens' ``iss`` says."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root, self.port = root, port or free_port()
        self.child: Child | None = None
        self.users: dict[str, dict[str, Any]] = {}  # put again after a restart (it keeps them in memory)

    @property
    def issuer(self) -> str:
        """The issuer URL (the provider names itself after the host it is asked on: always 127.0.0.1)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the provider and wait for its discovery document."""
        argv = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(self.port)]
        self.child = Child("oidc", argv, quiet=True, log_path=self.root / "oidc-provider.log")
        await self.child.start()

        async def serving() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{self.issuer}/.well-known/openid-configuration")).status_code == 200
            except httpx.HTTPError:
                return False

        await until(serving, timeout=60, what="the OpenID Connect provider to serve")
        for sub, claims in self.users.items():
            await self._put_user(sub, claims)

    async def stop(self) -> None:
        """Stop the provider (SIGTERM, then SIGKILL)."""
        if self.child is None or self.child.process is None or self.child.returncode is not None:
            return
        process = self.child.process
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def rotate_keys(self) -> None:
        """Restart on the same port: the provider signs with a new key, and its JWKS holds only that one."""
        await self.stop()
        await self.start()

    async def set_user(self, sub: str, claims: Mapping[str, Any]) -> None:
        """Make ``sub``'s tokens carry ``claims`` (kept across restarts)."""
        self.users[sub] = dict(claims)
        await self._put_user(sub, claims)

    async def _put_user(self, sub: str, claims: Mapping[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.put(f"{self.issuer}/users/{quote(sub, safe='')}", json=dict(claims))
            answer.raise_for_status()

    async def id_token(self, sub: str, *, audience: str = AUDIENCE, nonce: str | None = None) -> str:
        """An ID token for ``sub`` with audience ``audience``, through the code flow as a browser would walk it."""
        query = {
            "client_id": audience,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "scope": "openid profile email",
            "state": secrets.token_urlsafe(8),
            **({"nonce": nonce} if nonce else {}),
        }
        async with httpx.AsyncClient(base_url=self.issuer, timeout=10) as http:
            authorized = await http.post("/oauth2/authorize", params=query, data={"sub": sub})
            location = authorized.headers.get("location", "")
            code = parse_qs(urlsplit(location).query).get("code")
            if authorized.status_code != 302 or not code:
                raise RuntimeError(
                    f"the provider gave no code: {authorized.status_code} {location or authorized.text[:200]}"
                )
            exchanged = await http.post(
                "/oauth2/token",
                data={"grant_type": "authorization_code", "code": code[0], "redirect_uri": CALLBACK},
                auth=(audience, "any-secret"),
            )
            exchanged.raise_for_status()
            token: str = exchanged.json()["id_token"]
            return token


PEOPLE_TEAM = "oidc-people"  # the team the provider's group CONSOLE_GROUP signs in as
CONSOLE_GROUP = "console-people"
ADMINS_GROUP = "registry-admins"
PEOPLE_SCOPES = ["models:read", "models:write", "models:approve", "deployments:write", "audit:read"]


STACK_IDENTITY_PREFIXES = ("OIDC_", "QUERY_CONSOLE_OIDC_")  # what stack_environment sets


def stack_environment(provider: OidcProvider) -> dict[str, str]:
    """The settings that make a stack trust ``provider``: its tokens, the sign-in rules, the console's sign-in."""
    rules = [
        {"issuer": provider.issuer, "claims": {"groups": CONSOLE_GROUP}, "team": PEOPLE_TEAM, "scopes": PEOPLE_SCOPES},
        {
            "issuer": provider.issuer,
            "claims": {"groups": ADMINS_GROUP},
            "team": "platform",
            "scopes": ["platform:admin"],
        },
    ]
    return {
        "OIDC_ISSUERS": json.dumps([provider.issuer]),
        "OIDC_AUDIENCES": json.dumps([AUDIENCE]),
        # Its tokens are GitHub's stand-in: a trust rule names whose workload, as for GitHub's.
        "OIDC_IDENTIFYING_CLAIMS": json.dumps({provider.issuer: ["sub", "repository"]}),
        "OIDC_SIGN_IN_RULES": json.dumps(rules),
        # A rotation is picked up within a second, so the rotation test need not wait 30 s.
        "OIDC_JWKS_REFRESH_SECONDS": "1",
        "QUERY_CONSOLE_OIDC_ISSUER": provider.issuer,
        "QUERY_CONSOLE_OIDC_PROVIDER_NAME": "Test IdP",
        # A confidential client: the test provider takes any secret, and refuses a public client
        # (it does not implement PKCE, so the console's S256 challenge is checked by unit tests).
        "QUERY_CONSOLE_OIDC_CLIENT_SECRET": "any-secret",
    }
