"""API keys as registration vouches for them: the :class:`KeyStore` of every service but registration.

Registration owns ``api_keys``. The other services ask its internal introspection routes
(``POST /internal/v1/keys/authenticate``, ``GET /internal/v1/keys/{key_id}``, and the verifier route
of :mod:`shared.chassis.verifiers`) and cache each answer for ``KEY_CACHE_SECONDS``, refusals too,
in a bounded LRU keyed by the SHA-256 of the token (the token itself is never kept). Concurrent
lookups of one entry share one call. ``forget`` drops every entry of a key: the key evictions call it
on each ``api_key_revoked`` event, so a revocation takes effect as fast as that event travels.

When registration cannot answer, every lookup raises :class:`KeyIntrospectionUnavailable` and
``registry_key_introspection_failures_total`` counts it: a presented key authenticates nothing, and
its request is answered 503 with ``Retry-After`` (:mod:`shared.chassis.http_auth`), not the 401 of
a bad key, which would tell a client to replace a key that is fine; a consumer checking a Kafka
record's signature, bearer key or the key a service acted for retries the batch rather than
refusing a record that may well be proven correctly. Nothing is cached from a failed lookup.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from prometheus_client import Counter
from pydantic import BaseModel, Field, ValidationError

from registry_contract.auth import Principal, parse_api_key
from registry_contract.documents import Document
from registry_contract.record_signing import RecordProof, signature_matches
from registry_contract.times import UtcTime
from registry_contract.views import KeyRateLimit
from shared.chassis.keystore import KeyIntrospectionUnavailable
from shared.chassis.settings import CommonSettings
from shared.chassis.verifiers import INTERNAL_TOKEN_HEADER, RemoteVerifiers, VerifierSource, internal_token

log = structlog.get_logger(__name__)

AUTHENTICATE_PATH = "/internal/v1/keys/authenticate"
KEY_PATH = "/internal/v1/keys/{key_id}"
MAX_TOKEN_CHARS = 256  # a key is ~55 characters; anything longer is not one, and is never sent on
_KEY_ID = re.compile(r"^[A-Za-z0-9]{8}$")  # registry_contract.auth's key ids

INTROSPECTION_FAILURES = Counter(
    "registry_key_introspection_failures_total",
    "Key lookups registration could not answer (unreachable, 5xx, refused credential), by lookup",
    ["lookup"],
)


class KeyPrincipalRecord(BaseModel):
    """A usable key as registration vouches for it: who it is and what it may do, never its secret."""

    key_id: str
    team: str
    scopes: list[str] = []
    platform_admin: bool = Field(description="a platform-team key with platform:admin")
    expires_at: UtcTime | None = None
    rate_limit: KeyRateLimit | None = None
    can_sign: bool = Field(description="whether the key has a signature verifier (it can sign Kafka records)")

    @classmethod
    def of(cls, record: Document) -> KeyPrincipalRecord:
        """The introspection answer for a stored, usable key record."""
        limit = record.get("rate_limit")
        principal = Principal(key_id=record["_id"], team=record["team"], scopes=frozenset(record.get("scopes", ())))
        return cls(
            key_id=record["_id"],
            team=record["team"],
            scopes=sorted(principal.scopes),
            platform_admin=principal.is_platform_admin,
            expires_at=record.get("expires_at"),
            rate_limit=KeyRateLimit.model_validate(limit) if limit else None,
            can_sign="verifier" in record,
        )

    def principal(self) -> Principal:
        """The principal routes and handlers receive."""
        limit = (self.rate_limit.per_second, self.rate_limit.burst) if self.rate_limit else None
        return Principal(key_id=self.key_id, team=self.team, scopes=frozenset(self.scopes), rate_limit=limit)

    def expired(self) -> bool:
        """Whether the key has expired since registration answered."""
        if self.expires_at is None:
            return False
        expires_at = self.expires_at if self.expires_at.tzinfo else self.expires_at.replace(tzinfo=UTC)
        return expires_at <= datetime.now(UTC)


class AuthenticateRequest(BaseModel):
    """A presented key to check (the body of ``POST /internal/v1/keys/authenticate``)."""

    token: str = Field(max_length=MAX_TOKEN_CHARS)


@dataclass
class _Entry:
    expires: float
    key_id: str
    value: Any  # KeyPrincipalRecord | None for keys and tokens, bytes | None for verifiers


class RemoteKeyStore:
    """:class:`~shared.chassis.keystore.KeyStore` over registration's introspection routes, with a cache."""

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
        verifiers: VerifierSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url, self._token, self._timeout = base_url.rstrip("/"), token, timeout
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._transport = transport  # tests: registration in-process, or a fake
        self._client: httpx.AsyncClient | None = None
        self._remote_verifiers: RemoteVerifiers | None = None
        if verifiers is None:
            verifiers = self._remote_verifiers = RemoteVerifiers(
                base_url, token, timeout=timeout, ca_file=ca_file, transport=transport
            )
        self._verifiers = verifiers
        self._ttl, self._max, self._clock = ttl, max_entries, clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._flights: dict[str, tuple[str, asyncio.Task[Any]]] = {}
        # Bumped by forget() and clear(): a lookup in flight across them must not cache what it read before.
        self._generation = 0

    @classmethod
    def of(cls, settings: CommonSettings) -> RemoteKeyStore:
        """The store of ``REGISTRATION_INTERNAL_URL`` with the services' credential, cached ``KEY_CACHE_SECONDS``."""
        return cls(
            settings.registration_internal_url,
            internal_token(settings),
            ttl=settings.key_cache_seconds,
            ca_file=settings.internal_ca_file,
        )

    async def authenticate(self, token: str | None) -> Principal | None:
        """The key's principal; ``None`` alike for malformed, unknown, revoked and expired keys.

        Raises:
            KeyIntrospectionUnavailable: registration could not answer for a well-formed key.

        """
        if not token or len(token) > MAX_TOKEN_CHARS or (parsed := parse_api_key(token)) is None:
            return None
        slot = "t:" + hashlib.sha256(token.encode()).hexdigest()
        return _principal(await self._cached(slot, parsed[0], lambda: self._introspect("authenticate", token=token)))

    async def principal_of(self, key_id: str) -> Principal | None:
        """The principal of a key a service already authenticated, if still valid.

        Raises:
            KeyIntrospectionUnavailable: registration could not answer.

        """
        return _principal(await self._record(key_id))

    async def verify(self, proof: RecordProof) -> Principal | None:
        """The principal of the key that signed a record, if the signature verifies.

        Raises:
            KeyIntrospectionUnavailable: registration could not answer (for the key or its verifier).

        """
        record = await self._record(proof.key_id)
        if record is None or record.expired() or not record.can_sign:
            return None
        verifier = await self._verifier(proof.key_id)
        if verifier is None or not signature_matches(verifier, proof):
            return None
        return record.principal()

    def forget(self, key_id: str) -> None:
        """Drop every entry of ``key_id`` (by id, by any token of it, its verifier), and lookups in flight."""
        self._generation += 1
        for slot in [slot for slot, entry in self._cache.items() if entry.key_id == key_id]:
            del self._cache[slot]
        for slot in [slot for slot, (owner, _) in self._flights.items() if owner == key_id]:
            del self._flights[slot]  # a later caller starts its own lookup; the one in flight caches nothing

    def clear(self) -> None:
        """Drop everything (the key evictions (re)start: revocations may have been missed)."""
        self._generation += 1
        self._cache.clear()
        self._flights.clear()

    async def close(self) -> None:
        """Close the HTTP clients, if opened."""
        if self._client is not None:
            await self._client.aclose()
        if self._remote_verifiers is not None:
            await self._remote_verifiers.close()

    async def _record(self, key_id: str) -> KeyPrincipalRecord | None:
        if not _KEY_ID.match(key_id):
            return None  # not a key id: nothing to ask
        value: KeyPrincipalRecord | None = await self._cached(
            "k:" + key_id, key_id, lambda: self._introspect("key", key_id=key_id)
        )
        return value

    async def _verifier(self, key_id: str) -> bytes | None:
        async def fetch() -> bytes | None:
            try:
                return await self._verifiers(key_id, {"_id": key_id})
            except ConnectionError as exc:
                INTROSPECTION_FAILURES.labels("verifier").inc()
                raise KeyIntrospectionUnavailable(str(exc)) from exc

        value: bytes | None = await self._cached("v:" + key_id, key_id, fetch)
        return value

    async def _cached(self, slot: str, key_id: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The cached answer of ``slot``, else one lookup shared by every concurrent caller."""
        entry = self._cache.get(slot)
        if entry is not None and entry.expires > self._clock():
            self._cache.move_to_end(slot)
            return entry.value
        flight = self._flights.get(slot)
        if flight is None:
            task = asyncio.get_running_loop().create_task(self._fetch(slot, key_id, fetch))
            task.add_done_callback(_retrieve)
            flight = self._flights[slot] = (key_id, task)
            task.add_done_callback(lambda _: self._landed(slot, task))
        return await asyncio.shield(flight[1])

    def _landed(self, slot: str, task: asyncio.Task[Any]) -> None:
        flight = self._flights.get(slot)
        if flight is not None and flight[1] is task:
            del self._flights[slot]

    async def _fetch(self, slot: str, key_id: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        generation = self._generation
        value = await fetch()
        if generation == self._generation:  # else forgotten meanwhile: what was read may predate a revocation
            self._cache[slot] = _Entry(self._clock() + self._ttl, key_id, value)
            self._cache.move_to_end(slot)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return value

    async def _introspect(
        self, lookup: str, *, token: str | None = None, key_id: str = ""
    ) -> KeyPrincipalRecord | None:
        """Registration's answer for a token or a key id: the record, or ``None`` (404: no usable key)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, verify=self._verify, transport=self._transport
            )
        headers = {INTERNAL_TOKEN_HEADER: self._token}
        try:
            if token is not None:
                answer = await self._client.post(AUTHENTICATE_PATH, json={"token": token}, headers=headers)
            else:
                answer = await self._client.get(KEY_PATH.format(key_id=key_id), headers=headers)
        except httpx.HTTPError as exc:
            raise self._unavailable(lookup, f"unreachable: {type(exc).__name__}") from None
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise self._unavailable(lookup, f"answered {answer.status_code}")
        try:
            return KeyPrincipalRecord.model_validate_json(answer.content)
        except ValidationError:
            raise self._unavailable(lookup, "answered something that is not a key record") from None

    def _unavailable(self, lookup: str, why: str) -> KeyIntrospectionUnavailable:
        INTROSPECTION_FAILURES.labels(lookup).inc()
        log.warning("registration could not answer a key lookup", lookup=lookup, why=why, url=self._base_url)
        return KeyIntrospectionUnavailable(f"registration {why} for a key lookup ({lookup})")


def _principal(record: KeyPrincipalRecord | None) -> Principal | None:
    return record.principal() if record is not None and not record.expired() else None


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a lookup's failure as seen, when every caller of it was cancelled before it ended."""
    if not task.cancelled():
        task.exception()
