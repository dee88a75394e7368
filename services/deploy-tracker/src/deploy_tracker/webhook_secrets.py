"""Webhook signing secrets: Standard Webhooks format, signing, and rotation with an overlap.

A subscription has one current secret and, right after a rotation, the previous one until
``previous_secret_expires_at``: deliveries carry a signature for each, so a receiver that has
not switched yet keeps verifying while it does.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

from registry_contract.documents import Document

PREFIX = "whsec_"


def new_secret() -> str:
    """A signing secret in the Standard Webhooks format: ``whsec_`` and 32 random bytes, base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _signer(secret: str) -> Webhook:
    # Secrets made before the Standard Webhooks format are used as their raw bytes.
    return Webhook(secret) if secret.startswith(PREFIX) else Webhook(secret.encode())


def valid_secrets(subscription: Document, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous while it lasts."""
    found = [subscription["secret"]]
    previous, until = subscription.get("previous_secret"), subscription.get("previous_secret_expires_at")
    if previous and until is not None and (until if until.tzinfo else until.replace(tzinfo=UTC)) > now:
        found.append(previous)
    return found


def signature_header(secrets_: list[str], message_id: str, timestamp: datetime, body: bytes) -> str:
    """``webhook-signature``: space-separated ``v1,<base64>`` signatures of ``id.timestamp.body``."""
    text = body.decode()
    return " ".join(_signer(secret).sign(message_id, timestamp, text) for secret in secrets_)
