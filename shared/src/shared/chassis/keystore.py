"""Authenticating API keys and the records they sign, against ``api_keys``, with a short cache.

A revoked or expired key stops working in every service within ``ttl`` seconds (default 5):
that is how long a cached key record is trusted. Unknown key ids are cached too, so a flood of
made-up keys does not reach MongoDB on every request. A key's verifier never changes, so it is
kept longer (bounded); revocation is judged on the record, whatever the verifier cache holds.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from registry_contract.auth import ApiKey, Principal, generate_api_key, parse_api_key, secret_matches
from registry_contract.documents import Document
from registry_contract.record_signing import RecordProof, signature_matches
from registry_contract.views import ApiKeyPublic
from shared.chassis.verifiers import VERIFIER_FIELD, VerifierBox, VerifierSource


class KeyIntrospectionUnavailable(ConnectionError):
    """Registration could not answer for a key: a dependency fault (a request gets 503, a consumer retries)."""


class KeyStore(Protocol):
    """Where keys are checked: a presented token, a signed record, or a key id a service vouches for.

    Every method answers ``None`` alike for malformed, unknown, revoked and expired keys and for a
    wrong secret or signature, so a caller learns nothing about which keys exist. A store that asks
    another service raises :class:`KeyIntrospectionUnavailable` when it cannot get an answer: an
    outage is not a refusal.
    """

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a presented API key."""
        ...

    async def verify(self, proof: RecordProof) -> Principal | None:
        """The principal of the key that signed a record, if the signature verifies."""
        ...

    async def principal_of(self, key_id: str) -> Principal | None:
        """The principal of a key a service already authenticated, if still valid."""
        ...

    def forget(self, key_id: str) -> None:
        """Drop what is cached of a key (it was revoked)."""
        ...

    def clear(self) -> None:
        """Drop everything cached (revocations may have been missed: the key evictions were not following)."""
        ...


async def _no_verifiers(_key_id: str, _record: Document) -> bytes | None:
    return None


class MongoKeyStore:
    """:class:`KeyStore` over the ``api_keys`` collection, verifying signatures with ``verifiers``."""

    def __init__(
        self,
        keys: AsyncCollection[Document],
        *,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        verifiers: VerifierSource = _no_verifiers,
    ) -> None:
        self._keys, self._ttl, self._max, self._clock = keys, ttl, max_entries, clock
        self._cache: OrderedDict[str, tuple[float, Document | None]] = OrderedDict()
        self._verifiers = verifiers
        self._verifier_cache: OrderedDict[str, tuple[float, bytes | None]] = OrderedDict()
        # Bumped by forget(): a lookup in flight across a forget() must not cache what it read before.
        self._generation = 0

    async def authenticate(self, token: str | None) -> Principal | None:
        """The key's principal; ``None`` alike for malformed, unknown, revoked and expired keys."""
        parsed = parse_api_key(token) if token else None
        if parsed is None:
            return None
        key_id, secret = parsed
        record = await self._usable(key_id)
        if record is None or not secret_matches(secret, record["secret_hash"]):
            return None
        return _principal(record)

    async def verify(self, proof: RecordProof) -> Principal | None:
        """The principal of the key that signed a record; ``None`` when the signature does not verify."""
        record = await self._usable(proof.key_id)
        if record is None:
            return None
        verifier = await self._verifier(proof.key_id, record)
        if verifier is None or not signature_matches(verifier, proof):
            return None
        return _principal(record)

    async def _verifier(self, key_id: str, record: Document) -> bytes | None:
        if VERIFIER_FIELD not in record:  # a key made before signing, or without a verifier: nothing to fetch
            return None
        now = self._clock()
        cached = self._verifier_cache.get(key_id)
        if cached is not None and (cached[1] is not None or cached[0] > now):
            self._verifier_cache.move_to_end(key_id)
            return cached[1]
        generation = self._generation
        verifier = await self._verifiers(key_id, record)
        if generation != self._generation:
            return verifier
        self._verifier_cache[key_id] = (now + self._ttl, verifier)
        self._verifier_cache.move_to_end(key_id)
        while len(self._verifier_cache) > self._max:
            self._verifier_cache.popitem(last=False)
        return verifier

    async def principal_of(self, key_id: str) -> Principal | None:
        """The principal of a key a service already authenticated (by id: no secret), if still valid.

        Only for claims that arrive signed by a service (:mod:`shared.chassis.signing`); revocation and
        expiry since then still apply.
        """
        record = await self._usable(key_id)
        return _principal(record) if record else None

    async def _usable(self, key_id: str) -> Document | None:
        return usable(await self._record(key_id))

    def forget(self, key_id: str) -> None:
        """Drop a cached record at once (the service that revoked the key calls this)."""
        self._generation += 1
        self._cache.pop(key_id, None)
        self._verifier_cache.pop(key_id, None)

    def clear(self) -> None:
        """Drop every cached record, each as :meth:`forget` does (the key evictions (re)start)."""
        self._generation += 1  # lookups in flight too, though nothing of theirs is cached yet
        for key_id in [*self._cache, *self._verifier_cache]:
            self.forget(key_id)

    async def _record(self, key_id: str) -> Document | None:
        now = self._clock()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key_id)
            return cached[1]
        generation = self._generation
        record = await self._keys.find_one({"_id": key_id})
        if generation != self._generation:  # forgotten meanwhile: what was read may predate the revocation
            return record
        self._cache[key_id] = (now + self._ttl, record)
        self._cache.move_to_end(key_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return record


def usable(record: Document | None) -> Document | None:
    """``record`` if its key may act now: neither revoked nor expired."""
    if record is None or record.get("revoked"):
        return None
    expires_at = record.get("expires_at")
    if expires_at is not None and _aware(expires_at) <= datetime.now(UTC):
        return None
    return record


def _principal(record: Document) -> Principal:
    limit = record.get("rate_limit")
    return Principal(
        key_id=record["_id"],
        team=record["team"],
        scopes=frozenset(record.get("scopes", ())),
        rate_limit=(float(limit["per_second"]), int(limit["burst"])) if limit else None,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def issue_key(
    keys: AsyncCollection[Document],
    *,
    team: str,
    name: str,
    scopes: list[str],
    created_by: str,
    expires_at: datetime | None = None,
    given: ApiKey | None = None,
    rate_limit: tuple[float, int] | None = None,
    verifiers: VerifierBox | None = None,
) -> tuple[ApiKey, Document]:
    """Store a new key (only its secret's hash) and return it with its public record.

    With ``verifiers``, the key's signature verifier is stored sealed too, so the key can sign
    Kafka records; a key stored without one authenticates over HTTP only.
    """
    key = given or generate_api_key()
    record: Document = {
        "_id": key.key_id,
        "team": team,
        "name": name,
        "scopes": sorted(set(scopes)),
        "secret_hash": key.secret_hash,
        "revoked": False,
        "created_at": datetime.now(UTC),
        "created_by": created_by,
        "expires_at": expires_at,
        "rate_limit": {"per_second": rate_limit[0], "burst": rate_limit[1]} if rate_limit else None,
    }
    if verifiers is not None:
        record[VERIFIER_FIELD] = verifiers.seal_for(key.token)
    await keys.replace_one({"_id": key.key_id}, record, upsert=True)
    return key, record


def key_public(record: Document) -> dict[str, Any]:
    """A key's record without its hash, as JSON-ready data (:class:`registry_contract.views.ApiKeyPublic`)."""
    return ApiKeyPublic.of(record).model_dump(mode="json")
