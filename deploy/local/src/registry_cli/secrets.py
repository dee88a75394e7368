"""The embedded stack's own secrets: made once per data directory, kept beside its data.

On real infrastructure these come from a secret store (a Kubernetes Secret, the Compose
environment); locally they must survive restarts, because the audit chain is keyed with one
and every service must agree on the other.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, fields
from pathlib import Path

from cryptography.fernet import Fernet


@dataclass(frozen=True)
class StackSecrets:
    """The stack's secrets: event signing (every service), audit chain, webhook sealing (deploy tracker)."""

    event_signing_key: str
    audit_chain_key: str
    webhook_secret_keys: str

    def env(self) -> dict[str, str]:
        """As the environment variables the services read."""
        return {
            "EVENT_SIGNING_KEY": self.event_signing_key,
            "AUDIT_CHAIN_KEY": self.audit_chain_key,
            "DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS": self.webhook_secret_keys,
        }


MAKERS = {
    "event_signing_key": lambda: secrets.token_hex(32),
    "audit_chain_key": lambda: secrets.token_hex(32),
    "webhook_secret_keys": lambda: Fernet.generate_key().decode(),
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
        _write_private(path, made.__dict__)
    return made


def _write_private(path: Path, values: dict[str, str]) -> None:
    """Write ``values`` to ``path`` readable by the owner only, replacing it whole (never half written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(values, file)
    partial.replace(path)
