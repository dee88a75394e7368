"""audit service settings (``AUDIT_`` prefix over the shared ones)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings


class AuditSettings(CommonSettings):
    """Settings of the audit service."""

    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", populate_by_name=True)

    service_name: str = "audit"
    http_port: int = 8083
