"""API-key format and the principal every route and handler receives.

Keys are ``mr_<8-char id>_<secret>``; only the SHA-256 of the secret is stored, looked up by id
and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import string
from dataclasses import dataclass, field

SCOPES = (
    "models:read",
    "models:write",
    "models:approve",
    "deployments:write",
    "audit:read",
    "team:admin",
    "platform:admin",
)
PLATFORM_TEAM = "platform"
_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"^mr_([A-Za-z0-9]{8})_([A-Za-z0-9]{43,})$")


@dataclass(frozen=True)
class FederatedIdentity:
    """Who a verified OpenID Connect token names, and the trust rule that admitted it."""

    issuer: str
    subject: str
    rule_id: str
    claims: tuple[tuple[str, str], ...] = ()  # the claims the rule matched on, as (name, value)

    def as_record(self) -> dict[str, object]:
        """The identity as an audit entry keeps it."""
        return {"issuer": self.issuer, "subject": self.subject, "rule": self.rule_id, "claims": dict(self.claims)}


@dataclass(frozen=True)
class Principal:
    """Who is acting: the key's id and team, and what the key may do.

    A caller that presented an OpenID Connect token has ``identity`` set; its ``key_id`` is then
    the id of the trust rule that admitted it (the id a service names when it acts for the caller).
    """

    key_id: str
    team: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    rate_limit: tuple[float, int] | None = None  # (per second, burst) when the key has its own limit
    identity: FederatedIdentity | None = None

    @property
    def limit_key(self) -> str:
        """Whose rate-limit bucket a request takes from: the key's, or the rule's for one token subject."""
        if self.identity is None:
            return self.key_id
        return f"{self.key_id}/{hashlib.sha256(self.identity.subject.encode()).hexdigest()[:16]}"

    @property
    def is_platform_admin(self) -> bool:
        """A platform-team key with ``platform:admin`` may act on every team with every scope."""
        return self.team == PLATFORM_TEAM and "platform:admin" in self.scopes

    def has(self, scope: str) -> bool:
        """Whether the key holds ``scope`` (platform admins hold all)."""
        return self.is_platform_admin or scope in self.scopes

    def acts_for(self, team: str) -> bool:
        """Whether the key may act on ``team``'s resources (its own team, or any for platform admins)."""
        return self.is_platform_admin or self.team == team


@dataclass(frozen=True)
class ApiKey:
    """A freshly generated key: ``token`` is shown once; only ``secret_hash`` is stored."""

    key_id: str
    token: str
    secret_hash: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret part of a key, hex-encoded."""
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_api_key() -> ApiKey:
    """A new key: 8-char id and a base62 secret of 256 random bits (43 characters)."""
    key_id, secret = _random(8), _random(43)
    return ApiKey(key_id=key_id, token=f"mr_{key_id}_{secret}", secret_hash=hash_secret(secret))


def parse_api_key(token: str) -> tuple[str, str] | None:
    """Split a token into (key id, secret), or ``None`` when it is not in the key format."""
    match = _KEY.match(token.strip())
    return (match.group(1), match.group(2)) if match else None


MIN_SECRET_BITS = 128


def estimated_entropy_bits(secret: str) -> float:
    """Shannon entropy of ``secret``'s characters times its length: a floor check, not a proof.

    A generated key scores about 200 bits; a hand-typed ``aaaa…`` or ``abcabc…`` scores far below
    :data:`MIN_SECRET_BITS`, and such a key is refused where a caller may supply one.
    """
    counts = {char: secret.count(char) for char in set(secret)}
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values()) if secret else 0.0
    return per_char * len(secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def bearer_token(authorization: str | None, api_key_header: str | None = None) -> str | None:
    """The credential of ``Authorization: Bearer …`` or ``X-API-Key``."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return api_key_header.strip() if api_key_header else None
