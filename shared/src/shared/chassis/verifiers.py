"""API keys' signature verifiers: sealed in registration's keys, fetched by the other services.

A key's verifier is the signing key its producer derives from the key's secret
(:func:`registry_contract.record_signing.signing_key`). Registration stores it at the key's creation,
sealed like webhook secrets (:mod:`shared.chassis.sealing`), and serves it to the other services
on an internal route (``GET /internal/v1/keys/{key_id}/verifier``) guarded by the services'
credential (``INTERNAL_API_TOKEN``). It never travels on the bus and never appears in a key event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
from collections.abc import Awaitable, Callable
from typing import Self

import httpx
from cryptography.fernet import InvalidToken
from pydantic import SecretStr

from registry_contract.auth import parse_api_key
from registry_contract.documents import Document
from registry_contract.record_signing import signing_key
from shared.chassis.sealing import SecretBox, derived_fernet_key
from shared.chassis.settings import CommonSettings, ConfigurationError

VERIFIER_FIELD = "verifier"  # in an api_keys record: the sealed verifier (absent on keys made before signing)
INTERNAL_TOKEN_HEADER = "x-registry-service-token"
VERIFIER_PATH = "/internal/v1/keys/{key_id}/verifier"

# The verifier of a key, given its id and record; ``None`` when it has none.
VerifierSource = Callable[[str, Document], Awaitable[bytes | None]]


def _derived_from_event_key(settings: CommonSettings, purpose: str, setting: str) -> str:
    if settings.event_signing_key is None:
        # EVENT_SIGNING_KEY is required anyway: name it first, as every service does.
        raise ConfigurationError(f"EVENT_SIGNING_KEY is not set (every service needs it; {setting} derives from it)")
    return settings.event_signing_key.get_secret_value() + "\x00" + purpose


class VerifierBox(SecretBox):
    """Seals and opens API keys' verifiers."""

    SETTING = "KEY_VERIFIER_SEALING_KEYS"

    @classmethod
    def of(cls, settings: CommonSettings, *, sealing_keys: SecretStr | None) -> Self:
        """The box of ``sealing_keys`` (``KEY_VERIFIER_SEALING_KEYS``, read by each key issuer's own settings).

        Unset: a key derived from ``settings``' ``EVENT_SIGNING_KEY``.
        """
        if sealing_keys is not None:
            return cls.from_setting(sealing_keys)
        base = _derived_from_event_key(settings, "key-verifiers", cls.SETTING)
        return cls([derived_fernet_key(base, "registry-key-verifier-sealing-v1")])

    def seal_for(self, token: str) -> str:
        """The sealed verifier of an API key (its token in the key format)."""
        parsed = parse_api_key(token)
        if parsed is None:
            raise ValueError("not an API key")
        return self.seal(base64.b64encode(signing_key(parsed[1])).decode())

    def verifier_of(self, record: Document) -> bytes | None:
        """The verifier a key record holds; ``None`` when it has none or no listed key opens it."""
        stored = record.get(VERIFIER_FIELD)
        if not isinstance(stored, str):
            return None
        try:
            return base64.b64decode(self.open(stored))
        except (InvalidToken, ValueError):
            return None


def internal_token(settings: CommonSettings) -> str:
    """The services' credential on internal routes: ``INTERNAL_API_TOKEN``, else derived from ``EVENT_SIGNING_KEY``."""
    if settings.internal_api_token is not None:
        return settings.internal_api_token.get_secret_value()
    base = _derived_from_event_key(settings, "internal-api", "INTERNAL_API_TOKEN")
    return hmac.new(base.encode(), b"registry-internal-api-v1", hashlib.sha256).hexdigest()


def internal_client(
    base_url: str,
    token: str,
    *,
    timeout: float,
    ca_file: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An HTTP client for another service's internal routes: its URL, the services' credential, the internal CA."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=timeout,
        verify=verify,
        transport=transport,
        headers={INTERNAL_TOKEN_HEADER: token},
    )


def sealed_verifiers(box: VerifierBox) -> VerifierSource:
    """Verifiers read from the key records themselves (registration, which owns them)."""

    async def verifier(_key_id: str, record: Document) -> bytes | None:
        return box.verifier_of(record)

    return verifier


class VerifierUnavailable(ConnectionError):
    """Registration could not answer for a verifier: a dependency fault, so the batch is retried.

    A :class:`ConnectionError`, which :func:`shared.chassis.consuming.is_transient` treats as transient:
    an outage, a 5xx, or a 401/403 (the services' credentials disagree: a configuration fault, not the
    record's) must not dead-letter records that may well be signed correctly.
    """


class RemoteVerifiers:
    """Verifiers fetched from registration's internal route (every other service).

    A failure to reach registration raises: the consumer retries its batch with back-off instead of
    refusing records it could not check.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 5.0,
        ca_file: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url, self._token, self._timeout = base_url.rstrip("/"), token, timeout
        self._verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._transport = transport  # tests: registration in-process
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def of(cls, settings: CommonSettings) -> RemoteVerifiers:
        """The source of ``REGISTRATION_INTERNAL_URL`` with the services' credential."""
        return cls(settings.registration_internal_url, internal_token(settings), ca_file=settings.internal_ca_file)

    async def __call__(self, key_id: str, _record: Document) -> bytes | None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url, timeout=self._timeout, verify=self._verify, transport=self._transport
            )
        try:
            answer = await self._client.get(
                VERIFIER_PATH.format(key_id=key_id), headers={INTERNAL_TOKEN_HEADER: self._token}
            )
        except httpx.TransportError as exc:
            raise VerifierUnavailable(f"registration unreachable for a verifier: {type(exc).__name__}") from exc
        if answer.status_code == 404:
            return None
        if answer.status_code >= 500 or answer.status_code in (401, 403):
            raise VerifierUnavailable(f"registration answered {answer.status_code} for a verifier")
        answer.raise_for_status()
        return base64.b64decode(answer.json()["verifier"])

    async def close(self) -> None:
        """Close the HTTP client, if one was opened."""
        if self._client is not None:
            await self._client.aclose()
