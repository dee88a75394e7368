"""OpenID Connect tokens as bearers: what a service asks of the one that verifies them.

Registration verifies tokens (the issuers' JWKS, the platform's sign-in rules and the teams'
trust rules are its business); every other service asks its internal route
``POST /internal/v1/tokens/authenticate`` and caches the answer, refusals too, for
``KEY_CACHE_SECONDS`` and never past the token's own expiry. A cached answer is dropped when a
``trust_rule_deleted`` event names its rule (the key evictions), as a revoked key's is.

A token that is not admitted gets one reason (``expired``, ``audience``, ``no_rule``…), recorded
in the access entry of the 401; the caller's answer is the same for every reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import structlog
from pydantic import BaseModel, Field, ValidationError

from registry_contract.auth import FederatedIdentity, Principal, parse_api_key
from registry_contract.times import UtcTime
from shared.chassis.settings import CommonSettings
from shared.chassis.verifiers import internal_client, internal_token

log = structlog.get_logger(__name__)

TOKENS_PATH = "/internal/v1/tokens/authenticate"
TEAM_HEADER = "x-registry-team"  # which team a token acts for, when trust rules of several match it
MAX_TOKEN_CHARS = 16_384  # no token this long is sent on; the verifier's own bound (OIDC_MAX_TOKEN_BYTES) is lower
UNAVAILABLE = "verifier_unavailable"


class TokenRefused(Exception):
    """A token that admits no one, and the one-word reason (recorded, never told to the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Federation(Protocol):
    """What turns an OpenID Connect token into a principal."""

    async def authenticate(self, token: str, *, team: str | None) -> Principal:
        """The principal of ``token`` (acting for ``team`` when given), or :class:`TokenRefused`."""
        ...

    def forget(self, rule_id: str) -> None:
        """Drop what is cached of principals admitted by ``rule_id`` (the rule was deleted)."""
        ...

    def clear(self) -> None:
        """Drop everything cached (deletions may have been missed: the evictions were not following)."""
        ...


def issuer_url_allowed(url: str) -> bool:
    """Whether ``url`` may be an issuer: https, or http on a loopback host (a provider on this machine)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def token_slot(token: str, team: str | None) -> str:
    """Where an answer for ``token`` acting for ``team`` is cached: their hash (the token itself is never kept)."""
    return hashlib.sha256(f"{team or ''}\n{token}".encode()).hexdigest()


def looks_like_token(credential: str) -> bool:
    """Whether ``credential`` is shaped as a JWS (three dot-separated parts), not an API key."""
    return credential.count(".") == 2 and parse_api_key(credential) is None


class TokenAuthenticateRequest(BaseModel):
    """The body of ``POST /internal/v1/tokens/authenticate``."""

    token: str = Field(max_length=MAX_TOKEN_CHARS)
    team: str | None = Field(None, max_length=64)


class IdentityRecord(BaseModel):
    """Who a token names and the rule that admitted it (:class:`FederatedIdentity`)."""

    issuer: str
    subject: str
    rule: str
    claims: dict[str, str] = {}


class TokenPrincipalRecord(BaseModel):
    """Registration's answer for an admitted token: the principal, until the token expires."""

    key_id: str = Field(description="the id of the rule that admitted the token")
    team: str
    scopes: list[str] = []
    identity: IdentityRecord
    expires_at: UtcTime

    @classmethod
    def of(cls, principal: Principal, expires_at: datetime) -> TokenPrincipalRecord:
        """The answer for ``principal`` (which must carry an identity), admitted until ``expires_at``."""
        if principal.identity is None:
            raise ValueError("only a token's principal has an identity")
        return cls(
            key_id=principal.key_id,
            team=principal.team,
            scopes=sorted(principal.scopes),
            identity=IdentityRecord.model_validate(principal.identity.as_record()),
            expires_at=expires_at,
        )

    def principal(self) -> Principal:
        """The principal routes and handlers receive."""
        identity = FederatedIdentity(
            issuer=self.identity.issuer,
            subject=self.identity.subject,
            rule_id=self.identity.rule,
            claims=tuple(sorted(self.identity.claims.items())),
        )
        return Principal(key_id=self.key_id, team=self.team, scopes=frozenset(self.scopes), identity=identity)


class TokenRefusal(BaseModel):
    """Registration's answer for a token it does not admit (404)."""

    reason: str = Field(max_length=64)


@dataclass
class _Answer:
    until: float  # monotonic
    rule_id: str | None
    record: TokenPrincipalRecord | None
    reason: str


class RemoteFederation:
    """:class:`Federation` over registration's internal route, with a bounded cache keyed by the token's hash."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        timeout: float = 5.0,
        ca_file: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = internal_client(base_url, token, timeout=timeout, ca_file=ca_file, transport=transport)
        self._ttl, self._max, self._clock = ttl, max_entries, clock
        self._cache: OrderedDict[str, _Answer] = OrderedDict()
        self._flights: dict[str, asyncio.Task[_Answer]] = {}
        self._generation = 0

    @classmethod
    def of(cls, settings: CommonSettings) -> RemoteFederation:
        """The federation of ``REGISTRATION_INTERNAL_URL``, answers cached ``KEY_CACHE_SECONDS``."""
        return cls(
            settings.registration_internal_url,
            internal_token(settings),
            ttl=settings.key_cache_seconds,
            ca_file=settings.internal_ca_file,
        )

    async def authenticate(self, token: str, *, team: str | None) -> Principal:
        """The principal registration admits ``token`` as, or :class:`TokenRefused`."""
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRefused("too_large")
        slot = token_slot(token, team)
        answer = self._cache.get(slot)
        if answer is None or answer.until <= self._clock():
            flight = self._flights.get(slot)
            if flight is None:
                flight = self._flights[slot] = asyncio.get_running_loop().create_task(self._fetch(slot, token, team))
                flight.add_done_callback(lambda done: self._landed(slot, done))
            answer = await asyncio.shield(flight)
        else:
            self._cache.move_to_end(slot)
        if answer.record is None or answer.record.expires_at <= datetime.now(UTC):
            raise TokenRefused(answer.reason or "expired")
        return answer.record.principal()

    def _landed(self, slot: str, flight: asyncio.Task[_Answer]) -> None:
        if self._flights.get(slot) is flight:
            del self._flights[slot]

    def forget(self, rule_id: str) -> None:
        """Drop every answer that names ``rule_id``, every refusal (a new rule may admit it), and lookups in flight."""
        self._generation += 1
        for slot in [slot for slot, answer in self._cache.items() if answer.rule_id in (rule_id, None)]:
            del self._cache[slot]
        self._flights.clear()

    def clear(self) -> None:
        """Drop everything (the key evictions (re)start: deletions may have been missed)."""
        self._generation += 1
        self._cache.clear()
        self._flights.clear()

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def _fetch(self, slot: str, token: str, team: str | None) -> _Answer:
        generation = self._generation
        answer = await self._ask(token, team)
        if answer.reason == UNAVAILABLE:
            return answer  # an outage is not remembered: the next request asks again
        if generation == self._generation:
            self._cache[slot] = answer
            self._cache.move_to_end(slot)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return answer

    async def _ask(self, token: str, team: str | None) -> _Answer:
        until = self._clock() + self._ttl
        body: dict[str, Any] = {"token": token, "team": team}
        try:
            reply = await self._client.post(TOKENS_PATH, json=body)
        except httpx.HTTPError as exc:
            url = str(self._client.base_url)
            log.warning("registration could not answer a token lookup", why=type(exc).__name__, url=url)
            return _Answer(until, None, None, UNAVAILABLE)
        try:
            if reply.status_code == 200:
                record = TokenPrincipalRecord.model_validate_json(reply.content)
                remaining = (record.expires_at - datetime.now(UTC)).total_seconds()
                return _Answer(min(until, self._clock() + remaining), record.key_id, record, "")
            if reply.status_code == 404:
                return _Answer(until, None, None, TokenRefusal.model_validate_json(reply.content).reason)
        except ValidationError:
            pass
        log.warning("registration answered a token lookup unexpectedly", status=reply.status_code)
        return _Answer(until, None, None, UNAVAILABLE)
