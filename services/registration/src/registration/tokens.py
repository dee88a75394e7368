"""Verification of OpenID Connect ID tokens and RFC 9068 access tokens (JWS compact JWTs).

The checks run cheapest first, and nothing read from a token is trusted before its signature is:
the size, the shape and the algorithm are checked before any key is looked for, and an issuer not
configured is refused before any network call, so a hostile token costs bounded work and makes no
request on its own; only a configured issuer's keys are ever fetched (see :mod:`issuer_keys`).
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

from registration.config import ASYMMETRIC_ALGORITHMS, RegistrationSettings
from registration.issuer_keys import IssuerKeys
from shared.chassis.federation import TokenRefused, issuer_url_allowed

MAX_CLAIMS = 200
MAX_JSON_DEPTH = 16  # of the payload; claims nest a few levels (realm_access.roles), never dozens
LAST_NUMERIC_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z: any later is a made-up date, not a time

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature, issuer, audience and times were verified, and what it says."""

    issuer: str
    subject: str
    claims: dict[str, Any]  # the whole verified payload
    expires_at: datetime  # aware UTC


class TokenVerifier:
    """Verifies tokens of the configured issuers with their published keys; refusals are :class:`TokenRefused`."""

    def __init__(
        self,
        *,
        issuers: Sequence[str],
        audiences: Sequence[str],
        algorithms: Sequence[str],
        leeway_seconds: float = 30,
        max_token_bytes: int = 8192,
        jwks_refresh_seconds: float = 30,
        jwks_max_age_seconds: float = 3600,
        http_timeout_seconds: float = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        refused = sorted(set(algorithms) - (ASYMMETRIC_ALGORITHMS & set(jws.JWSRegistry.algorithms)))
        if refused:
            raise ValueError(f"not asymmetric signature algorithms: {', '.join(refused)}")
        unsafe = [issuer for issuer in issuers if not issuer_url_allowed(issuer)]
        if unsafe:
            raise ValueError(f"an issuer is https, or http on a loopback host: {', '.join(unsafe)}")
        self._issuers = frozenset(issuers)
        self._audiences = frozenset(audiences)
        self._leeway, self._max_bytes, self._clock = leeway_seconds, max_token_bytes, clock
        # One registry per algorithm: verifying under a token's alg can never fall back to another.
        self._registries = {alg: _registry(alg, max_token_bytes) for alg in algorithms}
        self._keys = IssuerKeys(
            issuers=issuers,
            refresh_seconds=jwks_refresh_seconds,
            max_age_seconds=jwks_max_age_seconds,
            timeout_seconds=http_timeout_seconds,
            transport=transport,
            clock=clock,
        )

    @classmethod
    def of(cls, settings: RegistrationSettings) -> TokenVerifier:
        """The verifier the ``OIDC_*`` settings describe."""
        return cls(
            issuers=settings.oidc_issuers,
            audiences=settings.oidc_audiences,
            algorithms=settings.oidc_algorithms,
            leeway_seconds=settings.oidc_leeway_seconds,
            max_token_bytes=settings.oidc_max_token_bytes,
            jwks_refresh_seconds=settings.oidc_jwks_refresh_seconds,
            jwks_max_age_seconds=settings.oidc_jwks_max_age_seconds,
            http_timeout_seconds=settings.oidc_http_timeout_seconds,
        )

    async def verify(self, token: str) -> VerifiedToken:
        """What ``token`` verifiably says, or :class:`TokenRefused` with the first check it fails."""
        if len(token.encode("utf-8", "surrogatepass")) > self._max_bytes:
            raise TokenRefused("too_large")
        header, payload = _unverified_parts(token)
        alg = header.get("alg")
        # Only the allow-list decides: "none", an HMAC keyed with a public key, or anything unlisted is refused.
        if alg is None or alg not in self._registries:
            raise TokenRefused("algorithm")
        issuer = payload.get("iss")
        if not isinstance(issuer, str) or issuer not in self._issuers:
            raise TokenRefused("issuer")
        kid = header.get("kid")
        if not self._signed(token, await self._keys.keys_for(issuer, kid, alg), alg):
            # Without a key id, a provider may have rotated to a key not yet fetched: fetch once, if due.
            if kid is not None or not await self._keys.refetched(issuer):
                raise TokenRefused("signature")
            if not self._signed(token, await self._keys.keys_for(issuer, kid, alg), alg):
                raise TokenRefused("signature")
        expires_at = self._check_claims(payload)
        return VerifiedToken(issuer=issuer, subject=payload["sub"], claims=payload, expires_at=expires_at)

    async def close(self) -> None:
        """Close the HTTP client of the key fetches."""
        await self._keys.close()

    def _signed(self, token: str, keys: list[Key], alg: str) -> bool:
        """Whether one of ``keys`` verifies ``token``'s signature under ``alg`` (already allow-listed)."""
        for key in keys:
            if key.alg is not None and key.alg != alg:
                continue  # the provider bound this key to another algorithm
            try:
                jws.deserialize_compact(token, key, registry=self._registries[alg])
            except (JoseError, ValueError, TypeError):
                continue
            return True
        return False

    def _check_claims(self, payload: dict[str, Any]) -> datetime:
        """The token's expiry, once its times, audience, subject and claim values are acceptable."""
        now, leeway = self._clock(), self._leeway
        expires = _numeric_date(payload.get("exp"))
        if expires is None:
            raise TokenRefused("claims")
        if now > expires + leeway:
            raise TokenRefused("expired")
        for name in ("nbf", "iat"):  # not before; issued at (a token from the future is not yet valid)
            if name in payload:
                moment = _numeric_date(payload[name])
                if moment is None:
                    raise TokenRefused("claims")
                if now + leeway < moment:
                    raise TokenRefused("not_yet_valid")
        audience = payload.get("aud")
        named = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        if self._audiences.isdisjoint(value for value in named if isinstance(value, str)):
            raise TokenRefused("audience")
        subject = payload.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenRefused("claims")
        # Claims end up in logs, audit entries and rule matches, where a control character could forge a line.
        if len(payload) > MAX_CLAIMS or any(_has_control(name, value) for name, value in payload.items()):
            raise TokenRefused("claims")
        return datetime.fromtimestamp(expires, UTC)


def _registry(alg: str, max_token_bytes: int) -> jws.JWSRegistry:
    # Headers are checked here (a flat object of strings); joserfc's narrower default would turn a
    # long but valid header into a signature failure. Unregistered header names are let through.
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    registry.max_header_length = max_token_bytes
    return registry


def _unverified_parts(token: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The header and payload of a JWS compact token, neither yet to be trusted; ``malformed`` if not one."""
    segments = token.split(".")
    if len(segments) != 3 or not all(_SEGMENT.fullmatch(segment) for segment in segments[:2]):
        raise TokenRefused("malformed")
    if segments[2] and not _SEGMENT.fullmatch(segments[2]):
        raise TokenRefused("malformed")  # an empty signature is left for the algorithm check to refuse
    header, payload = _json_object(segments[0]), _json_object(segments[1])
    if not all(isinstance(value, str) for value in header.values()):
        raise TokenRefused("malformed")  # nothing a verifier needs (alg, kid, typ) is anything but a string
    if _depth(payload) > MAX_JSON_DEPTH:
        raise TokenRefused("malformed")
    return header, payload


def _json_object(segment: str) -> dict[str, Any]:
    try:
        text = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode("utf-8")
        value = json.loads(text, object_pairs_hook=_unique_names, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise TokenRefused("malformed") from None
    if not isinstance(value, dict):
        raise TokenRefused("malformed")
    return value


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A name given twice reads differently to different parsers (first or last wins): refuse it.
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("a name is repeated")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests objects and arrays (iteratively: no recursion for hostile input)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _numeric_date(value: Any) -> float | None:
    """``value`` as seconds since the epoch, if it is a JSON number within years 1970 to 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= LAST_NUMERIC_DATE:
        return None
    return float(value)


def _has_control(name: str, value: Any) -> bool:
    """Whether a top-level claim's name, string value or strings in its list value hold a control character."""
    texts = [name]
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, list):
        texts.extend(item for item in value if isinstance(item, str))
    return any(_CONTROL.search(text) for text in texts)
