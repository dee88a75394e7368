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

import structlog
from cryptography.fernet import InvalidToken
from pymongo.asynchronous.collection import AsyncCollection

from registry_contract.documents import Document
from shared.chassis import sealing
from shared.chassis.sealing import SEALED

__all__ = ["SEALED", "SecretBox", "reseal_all"]
log = structlog.get_logger(__name__)
SECRET_FIELDS = ("secret", "previous_secret")


class SecretBox(sealing.SecretBox):
    """Seals and opens webhook secrets (:class:`shared.chassis.sealing.SecretBox`)."""

    SETTING = "DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS"


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
