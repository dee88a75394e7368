"""Audit service settings (``AUDIT_`` prefix over the shared ones)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.chassis.settings import CommonSettings


class AuditSettings(CommonSettings):
    """How the audit service consumes every topic."""

    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", populate_by_name=True)

    service_name: str = "audit"
    http_port: int = 8083
    consumer_group: str = "audit"
    batch_max_records: int = 2000
    batch_timeout_ms: int = 50
    # HMAC key of the audit chain: whoever can write the database but not read this cannot
    # rewrite the log unnoticed. Kept outside the database (a Secret), like EVENT_SIGNING_KEY.
    chain_key: SecretStr | None = Field(None, validation_alias=AliasChoices("AUDIT_CHAIN_KEY", "chain_key"))
