"""The signing keys of trusted OpenID Connect issuers: discovered, fetched, cached, rotated.

Every fetch is bounded in time, bytes and keys, and an issuer's keys are fetched at most once per
refresh interval whatever the tokens ask for: a flood of tokens naming unknown key ids costs the
provider one request per interval, not one per token. Concurrent verifications that need the same
issuer's keys share one fetch.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from shared.chassis.federation import TokenRefused, issuer_url_allowed

log = structlog.get_logger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 256 * 1024
# A token without a key id is tried under each key: a bounded number of signature checks.
MAX_KIDLESS_TRIES = 5
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # by the algorithm's first two letters
MAX_KEYS = 100
SIGNATURE_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})  # never "oct": a published secret is no secret


class _Unavailable(Exception):
    """A discovery document or key set that could not be had; the message says why (it is logged)."""


@dataclass
class _Issuer:
    """What is known of one issuer's keys, and the fetch under way if any."""

    keys: tuple[Key, ...] | None = None  # None: never fetched
    fetched_at: float = float("-inf")
    attempted_at: float = float("-inf")  # the last fetch's end, whether it succeeded or not
    failed: bool = False  # the last fetch did not succeed
    flight: asyncio.Task[None] | None = None


class IssuerKeys:
    """The verification keys of each trusted issuer, through its discovery document and JWKS."""

    def __init__(
        self,
        *,
        issuers: Sequence[str],
        refresh_seconds: float,
        max_age_seconds: float,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = {issuer: _Issuer() for issuer in issuers}
        self._refresh, self._max_age, self._timeout = refresh_seconds, max_age_seconds, timeout_seconds
        self._transport, self._clock = transport, clock
        self._client: httpx.AsyncClient | None = None

    async def keys_for(self, issuer: str, kid: str | None, alg: str) -> list[Key]:
        """The keys of ``issuer`` a token may be signed with: the one named ``kid``, or (no kid) each of them.

        Keys past their maximum age, or a key id not among them (a rotation), make the keys be fetched
        again (see :meth:`_due`). Raises :class:`TokenRefused` when there is none.
        """
        state = self._issuers[issuer]
        usable = self._fresh(state) and bool(_find(state.keys, kid, alg))
        if not usable and (state.flight is not None or self._due(state)):
            await self._refresh_keys(issuer, state)
        if not self._fresh(state):
            raise TokenRefused("jwks_unavailable")
        keys = _find(state.keys, kid, alg)
        if not keys:
            raise TokenRefused("unknown_key")
        return keys

    async def refetched(self, issuer: str) -> bool:
        """Fetch ``issuer``'s keys again if due (a token without a key id failed under every key held).

        A provider that rotates without key ids is followed this way; a flood of such tokens costs at
        most one fetch per refresh interval. Whether new keys were fetched.
        """
        state = self._issuers[issuer]
        before = state.fetched_at
        if state.flight is not None or self._due(state):
            await self._refresh_keys(issuer, state)
        return self._fresh(state) and state.fetched_at != before

    async def close(self) -> None:
        """Close the HTTP client, if opened."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _fresh(self, state: _Issuer) -> bool:
        # A wall clock set back (fetched "in the future") ages the keys out rather than keeping them longer.
        return state.keys is not None and 0 <= self._clock() - state.fetched_at < self._max_age

    def _due(self, state: _Issuer) -> bool:
        """Whether keys found wanting may be fetched now, when no fetch is under way to be joined.

        Keys that merely aged are fetched again at once; otherwise (an unknown key id, a failed
        fetch) at most once per refresh interval, which is what bounds the requests a flood of
        made-up key ids causes.
        """
        if state.keys is not None and not state.failed and not self._fresh(state):
            return True
        elapsed = self._clock() - state.attempted_at
        return elapsed >= self._refresh or elapsed < 0  # < 0: the wall clock was set back

    async def _refresh_keys(self, issuer: str, state: _Issuer) -> None:
        """Fetch ``issuer``'s keys, or join the fetch under way.

        Shielded: a caller that goes away (its request was cancelled) does not abort the fetch others wait for.
        """
        flight = state.flight
        if flight is None:
            flight = state.flight = asyncio.get_running_loop().create_task(self._fetch(issuer, state))
            flight.add_done_callback(lambda done: _landed(state, done))
        await asyncio.shield(flight)

    async def _fetch(self, issuer: str, state: _Issuer) -> None:
        succeeded = False
        try:
            async with asyncio.timeout(self._timeout):  # the whole exchange, not each read
                keys = await self._download(issuer)
            state.keys, state.fetched_at, succeeded = keys, self._clock(), True
        # Whatever the issuer serves (a jwks_uri httpx cannot even parse…), its tokens fail, never the request.
        except Exception as exc:
            log.warning("could not fetch an issuer's signing keys", issuer=issuer, why=str(exc) or type(exc).__name__)
        finally:  # whatever went wrong, even unforeseen, the next try waits a refresh interval
            state.failed, state.attempted_at = not succeeded, self._clock()

    async def _download(self, issuer: str) -> tuple[Key, ...]:
        # OpenID Connect Discovery 1.0 §4: a terminating slash is removed before the well-known path.
        discovery = await self._get_json(issuer.rstrip("/") + DISCOVERY_PATH)
        if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
            # Another issuer's keys would let its tokens pass as this one's (Discovery §4.3).
            named = discovery.get("issuer") if isinstance(discovery, dict) else None
            raise _Unavailable(f"the discovery document names issuer {named!r}")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not issuer_url_allowed(jwks_uri):
            raise _Unavailable(f"jwks_uri {jwks_uri!r} is not https (nor http on a loopback host)")
        return _usable_keys(await self._get_json(jwks_uri))

    async def _get_json(self, url: str) -> Any:
        if self._client is None:
            # No redirects: a discovery document or JWKS served from elsewhere is not the issuer's.
            self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport, follow_redirects=False)
        # Identity encoding: a small compressed body must not inflate past the bound before it is counted.
        headers = {"accept": "application/json", "accept-encoding": "identity"}
        async with self._client.stream("GET", url, headers=headers) as reply:
            if reply.status_code != 200:
                raise _Unavailable(f"{url} answered {reply.status_code}")
            body = bytearray()
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise _Unavailable(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise _Unavailable(f"{url} did not answer JSON") from None


def _landed(state: _Issuer, flight: asyncio.Task[None]) -> None:
    if state.flight is flight:
        state.flight = None


def _usable_keys(jwks: Any) -> tuple[Key, ...]:
    """The signature keys of a JWKS; keys for encryption, secret keys and unreadable ones are skipped."""
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(entries, list):
        raise _Unavailable("the JWKS has no list of keys")
    if len(entries) > MAX_KEYS:
        raise _Unavailable(f"the JWKS lists {len(entries)} keys, more than {MAX_KEYS}")
    keys: list[Key] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in SIGNATURE_KEY_TYPES:
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            # RFC 7517 §5: a key that cannot be used is ignored, the rest of the set still serves.
            log.info("skipped an unreadable key of a JWKS", kid=str(entry.get("kid")), why=type(exc).__name__)
    return tuple(keys)


def _find(keys: tuple[Key, ...] | None, kid: str | None, alg: str) -> list[Key]:
    """The key named ``kid``; without a kid, every key (at most :data:`MAX_KIDLESS_TRIES`), each tried in turn."""
    if keys is None:
        return []
    if kid is None:
        suitable = [key for key in keys if key.key_type == _KEY_TYPES.get(alg[:2]) and key.alg in (None, alg)]
        return suitable[:MAX_KIDLESS_TRIES]
    named = [key for key in keys if key.kid == kid]
    # One kid may name keys for several algorithms: prefer the one declared for the token's.
    preferred = next((key for key in named if key.alg in (None, alg)), named[0] if named else None)
    return [preferred] if preferred is not None else []
