"""deploy-tracker service settings (``DEPLOY_TRACKER_`` prefix over the shared ones)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings


class DeployTrackerSettings(CommonSettings):
    """Settings of the deploy-tracker service."""

    model_config = SettingsConfigDict(env_prefix="DEPLOY_TRACKER_", extra="ignore", populate_by_name=True)

    service_name: str = "deploy-tracker"
    http_port: int = 8082
