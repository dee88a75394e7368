"""deploy-tracker service settings (``DEPLOY_TRACKER_`` prefix over the shared ones)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings


class DeployTrackerSettings(CommonSettings):
    """How the tracker consumes deployment reports and relays its events."""

    model_config = SettingsConfigDict(env_prefix="DEPLOY_TRACKER_", extra="ignore", populate_by_name=True)

    service_name: str = "deploy-tracker"
    http_port: int = 8082
    consumer_group: str = "deploy-tracker"
    batch_max_records: int = 500
    batch_timeout_ms: int = 20
    relay_interval_seconds: float = 0.2
    relay_batch_size: int = 1000
    retry_backoff_seconds: float = 1.0
