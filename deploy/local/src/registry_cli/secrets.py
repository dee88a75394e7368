"""The embedded stack's own secrets: made once per data directory, kept beside its data.

On real infrastructure these come from a secret store (a Kubernetes Secret, the Compose
environment); locally they must survive restarts, because the audit chain is keyed with one
and every service must agree on the other.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackSecrets:
    """``EVENT_SIGNING_KEY`` (every service) and ``AUDIT_CHAIN_KEY`` (the audit service)."""

    event_signing_key: str
    audit_chain_key: str

    def env(self) -> dict[str, str]:
        """As the environment variables the services read."""
        return {"EVENT_SIGNING_KEY": self.event_signing_key, "AUDIT_CHAIN_KEY": self.audit_chain_key}


def load_or_create(data_dir: Path) -> StackSecrets:
    """The secrets of ``data_dir``, created (readable by the owner only) on first use."""
    path = data_dir / "secrets.json"
    if path.exists():
        return StackSecrets(**json.loads(path.read_text()))
    made = StackSecrets(event_signing_key=secrets.token_hex(32), audit_chain_key=secrets.token_hex(32))
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(made.__dict__, file)
    return made
