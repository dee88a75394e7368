"""The console's OpenID Connect provider: its endpoints (discovery, cached), the authorization URL, the code exchange.

Only the client's half of the authorization code flow (with PKCE) is here. The ID token it
yields is verified where every bearer token is, by registration, through the guard: the console
checks nothing of it but the nonce.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

# Authlib ships no type information (no py.typed): its client is typed Any here.
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]

from query.config import QuerySettings
from query.console.sign_ins import SignInFlow

log = structlog.get_logger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_SECONDS = 3600.0  # a provider's endpoints rarely move: asked again at most hourly
EXCHANGE_TIMEOUT_SECONDS = 10.0
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ProviderUnavailable(Exception):
    """The provider could not be asked, or answered what no provider should (its words are logged, not shown)."""


class ProviderRefused(Exception):
    """The provider answered with an OAuth error (``invalid_grant``: the code was used, expired or not ours)."""

    def __init__(self, error: object) -> None:
        self.error = error_code(error)
        super().__init__(self.error)


def error_code(value: object) -> str:
    """``value`` if it is shaped as an OAuth error code, else ``unknown``: a code is shown; free text never is."""
    return value if isinstance(value, str) and _ERROR_CODE.fullmatch(value) else "unknown"


@dataclass(frozen=True)
class Endpoints:
    """Where the browser is sent to sign in, and where the server exchanges the code."""

    authorization: str
    token: str


class IdentityProvider:
    """One provider (``QUERY_CONSOLE_OIDC_*``), the console a client of it."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        scopes: str,
        name: str,
        http: httpx.AsyncClient,
        oauth_options: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``http`` reads the discovery document; ``oauth_options`` go to Authlib's client (a transport, in tests)."""
        self.issuer, self.client_id, self.client_secret = issuer.rstrip("/"), client_id, client_secret
        self.scopes, self.name = scopes, name
        self._http, self._oauth_options, self._clock = http, oauth_options or {}, clock
        self._discovered: tuple[float, Endpoints] | None = None

    @classmethod
    def of(cls, settings: QuerySettings, http: httpx.AsyncClient) -> IdentityProvider | None:
        """The provider ``settings`` name, or ``None`` when the console signs in with API keys only."""
        if settings.console_oidc_issuer is None:
            return None
        secret = settings.console_oidc_client_secret
        return cls(
            issuer=settings.console_oidc_issuer,
            client_id=settings.console_oidc_client_id,
            client_secret=secret.get_secret_value() if secret is not None else None,
            scopes=settings.console_oidc_scopes,
            name=settings.console_oidc_provider_name,
            http=http,
        )

    async def endpoints(self) -> Endpoints:
        """The provider's endpoints from its discovery document, read again after :data:`DISCOVERY_SECONDS`."""
        if self._discovered is not None and self._discovered[0] > self._clock():
            return self._discovered[1]
        url = self.issuer + DISCOVERY_PATH
        try:
            answer = await self._http.get(url)
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("the identity provider's discovery document could not be read", url=url, why=repr(exc))
            raise ProviderUnavailable from None
        endpoints = _endpoints_of(document, self.issuer)
        if endpoints is None:
            log.warning("the identity provider's discovery document is not one for its issuer", url=url)
            raise ProviderUnavailable
        self._discovered = (self._clock() + DISCOVERY_SECONDS, endpoints)
        return endpoints

    def _client(self) -> Any:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,  # None: a public client, token_endpoint_auth_method "none"
            scope=self.scopes,
            code_challenge_method="S256",
            timeout=EXCHANGE_TIMEOUT_SECONDS,
            **self._oauth_options,
        )

    async def authorization_url(self, flow: SignInFlow) -> str:
        """Where to send the browser: ``response_type=code`` with the flow's state, nonce and S256 challenge."""
        endpoints = await self.endpoints()
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                endpoints.authorization,
                state=flow.state,
                code_verifier=flow.code_verifier,
                nonce=flow.nonce,
                redirect_uri=flow.redirect_uri,
            )
        return str(url)

    async def exchange(self, code: str, flow: SignInFlow) -> str:
        """The ID token the provider gives for ``code`` and the flow's verifier (and client secret, if any)."""
        endpoints = await self.endpoints()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    endpoints.token,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=flow.code_verifier,
                    redirect_uri=flow.redirect_uri,
                )
        except OAuthError as refused:
            raise ProviderRefused(refused.error) from None
        except Exception as exc:  # another system's failure (transport, 5xx, not JSON): one answer for all
            log.warning("the identity provider's token endpoint failed", why=type(exc).__name__)
            raise ProviderUnavailable from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            log.warning("the identity provider answered without an ID token: is openid among the scopes?")
            raise ProviderUnavailable
        return id_token


def _endpoints_of(document: object, issuer: str) -> Endpoints | None:
    if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != issuer:
        return None
    authorization, token = document.get("authorization_endpoint"), document.get("token_endpoint")
    if not all(isinstance(url, str) and url.startswith(("https://", "http://")) for url in (authorization, token)):
        return None
    return Endpoints(authorization=str(authorization), token=str(token))


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWS ``token`` (its payload: base64url JSON), unverified: only for a token just verified."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise ValueError("not a JWS with a JSON payload") from None
    if not isinstance(claims, dict):
        raise ValueError("the token's payload is not a JSON object")
    return claims
