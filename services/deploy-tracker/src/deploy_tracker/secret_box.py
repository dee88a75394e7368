"""Webhook signing secrets at rest: sealed under keys the database never holds.

An API key is stored as a hash because the registry only ever checks it; a webhook secret must
be used (every delivery is signed with it), so it is sealed instead: Fernet (AES-128-CBC with
HMAC-SHA256, from ``cryptography``) under ``DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS``, which comes
from a secret store like ``EVENT_SIGNING_KEY``. A copy of the database (a backup, a volume
snapshot, a read-only credential) then holds no secret that could forge a delivery.

Rotation: the setting lists keys newest first. Put a new key first and restart: the tracker
opens with any listed key, seals new secrets with the newest, and at start re-seals every stored
secret that is not under the newest key (:func:`reseal_all`). Once that has run, drop the old key.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from pymongo.asynchronous.collection import AsyncCollection

from shared.chassis.settings import ConfigurationError
from shared.contract.documents import Document

log = structlog.get_logger(__name__)
SEALED = "fernet:"  # stored values without it were written before sealing: plain, re-sealed at start
SECRET_FIELDS = ("secret", "previous_secret")


class SecretBox:
    """Seals and opens webhook secrets with a list of Fernet keys, the first the one sealing."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError("DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS lists no key")
        try:
            self._keys = [Fernet(key.strip()) for key in keys]
        except ValueError:
            raise ConfigurationError(
                "DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS: each key is 32 url-safe base64-encoded bytes "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None
        self._any = MultiFernet(self._keys)

    @classmethod
    def from_setting(cls, value: SecretStr | None) -> SecretBox:
        """The box of the comma-separated keys of the setting; the tracker cannot run without one."""
        if value is None:
            raise ConfigurationError(
                "DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS is not set: webhook signing secrets are stored sealed "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
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


async def reseal_all(webhooks: AsyncCollection[Document], box: SecretBox) -> int:
    """Re-seal under the newest key every stored secret that is not (plain ones too); how many subscriptions.

    A secret no listed key opens is left as it is and logged: its subscription's deliveries fail
    to sign until the key it was sealed with is listed again, or the secret is rotated.
    """
    changed = 0
    async for webhook in webhooks.find({}, {field: 1 for field in SECRET_FIELDS}):
        updates: dict[str, str] = {}
        for field in SECRET_FIELDS:
            stored = webhook.get(field)
            if not isinstance(stored, str) or box.is_current(stored):
                continue
            try:
                updates[field] = box.seal(box.open(stored))
            except InvalidToken:
                log.error("webhook secret sealed under a key no longer listed", webhook=webhook["_id"], field=field)
        if updates:
            # Conditional on the values read: a rotation through the API meanwhile is not undone.
            unchanged = {field: webhook.get(field) for field in updates}
            result = await webhooks.update_one({"_id": webhook["_id"], **unchanged}, {"$set": updates})
            changed += result.modified_count
    return changed
