"""Secrets a service must use, not just check, sealed at rest under keys the database never holds.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a setting that lists keys
newest first: values open with any listed key and are sealed with the newest, so a key is rotated
by listing a new one first, re-sealing, then dropping the old. Used for webhook secrets (the
tracker) and API keys' signature verifiers (registration). A copy of the database (a backup, a
volume snapshot, a read-only credential) then holds nothing that signs or verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import ClassVar, Self

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from shared.chassis.settings import ConfigurationError

SEALED = "fernet:"  # stored values without it were written before sealing: plain
_MAKE_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class SecretBox:
    """Seals and opens secrets with a list of Fernet keys, the first the one sealing."""

    SETTING: ClassVar[str] = "the sealing-key setting"  # named in configuration errors

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError(f"{self.SETTING} lists no key")
        try:
            self._keys = [Fernet(key.strip()) for key in keys]
        except ValueError:
            raise ConfigurationError(
                f"{self.SETTING}: each key is 32 url-safe base64-encoded bytes ({_MAKE_KEY})"
            ) from None
        self._any = MultiFernet(self._keys)

    @classmethod
    def from_setting(cls, value: SecretStr | None) -> Self:
        """The box of the comma-separated keys of the setting; the service cannot run without one."""
        if value is None:
            raise ConfigurationError(f"{cls.SETTING} is not set: secrets are stored sealed ({_MAKE_KEY})")
        return cls([key for key in value.get_secret_value().split(",") if key.strip()])

    def seal(self, secret: str) -> str:
        """``secret`` as stored: sealed under the newest key."""
        return SEALED + self._keys[0].encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret ``stored`` holds (a value from before sealing is the secret itself).

        Raises :class:`InvalidToken` when no listed key opens it (a key dropped too early).
        """
        if not stored.startswith(SEALED):
            return stored
        return self._any.decrypt(stored.removeprefix(SEALED).encode()).decode()

    def open_each(self, stored: list[str]) -> list[str]:
        """The secrets of ``stored`` that open, in order; those no listed key opens are left out."""
        opened = []
        for value in stored:
            try:
                opened.append(self.open(value))
            except InvalidToken:
                continue
        return opened

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is sealed under the newest key (nothing to re-seal)."""
        if not stored.startswith(SEALED):
            return False
        try:
            self._keys[0].decrypt(stored.removeprefix(SEALED).encode())
        except InvalidToken:
            return False
        return True


def derived_fernet_key(secret: str, purpose: str) -> str:
    """A Fernet key derived from another secret for one ``purpose`` (a default when none is set)."""
    digest = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()
