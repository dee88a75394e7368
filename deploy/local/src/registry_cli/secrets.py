"""The embedded stack's own secrets: made once per data directory, kept beside its data.

On real infrastructure these come from a secret store (a Kubernetes Secret, the Compose
environment); locally they must survive restarts, because the audit chain is signed with one
(its public key checks the log) and every service must agree on the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, fields
from pathlib import Path

from cryptography.fernet import Fernet

from registry_cli.files import write_private


@dataclass(frozen=True)
class StackSecrets:
    """The stack's secrets: event signing (every service), audit chain and signing, webhook sealing (deploy tracker).

    ``audit_signing_key`` is the audit service's Ed25519 private key (the hex seed); its public
    key is what ``registry audit verify`` checks with. ``audit_chain_key`` only verifies chains
    written before signed chains.
    """

    event_signing_key: str
    audit_chain_key: str
    webhook_secret_keys: str
    audit_signing_key: str
    backup_key: str  # signs backup manifests (registry_cli.backup); no service reads it
    database_secret: str  # the database users' passwords derive from it (database_password)

    def env(self) -> dict[str, str]:
        """As the environment variables the services read."""
        return {
            "EVENT_SIGNING_KEY": self.event_signing_key,
            "AUDIT_CHAIN_KEY": self.audit_chain_key,
            "AUDIT_SIGNING_KEY": self.audit_signing_key,
            "DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS": self.webhook_secret_keys,
        }

    def database_password(self, user: str) -> str:
        """The password of the database user ``user`` (``registry up --tls``: registry_cli.database_users)."""
        return hmac.new(
            bytes.fromhex(self.database_secret), f"database-user:{user}".encode(), hashlib.sha256
        ).hexdigest()


MAKERS = {
    "event_signing_key": lambda: secrets.token_hex(32),
    "audit_chain_key": lambda: secrets.token_hex(32),
    "webhook_secret_keys": lambda: Fernet.generate_key().decode(),
    "audit_signing_key": lambda: secrets.token_hex(32),  # any 32 bytes are an Ed25519 seed
    "backup_key": lambda: secrets.token_hex(32),
    "database_secret": lambda: secrets.token_hex(32),
}


def load_or_create(data_dir: Path) -> StackSecrets:
    """The secrets of ``data_dir``, created (readable by the owner only) on first use.

    A secret added in a later release is made and written beside the existing ones, which are kept.
    """
    path = data_dir / "secrets.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [field.name for field in fields(StackSecrets) if field.name not in known]
    made = StackSecrets(**{name: known.get(name) or MAKERS[name]() for name in MAKERS})
    if missing:
        write_private(path, json.dumps(made.__dict__).encode())
    return made
