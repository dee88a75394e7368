"""deploy-tracker service settings (``DEPLOY_TRACKER_`` prefix over the shared ones)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.chassis.settings import CommonSettings


def _names(value: Any) -> Any:
    """Names given as ``a,b`` (spaces and empty items ignored) or as a JSON list ``["a", "b"]``."""
    if not isinstance(value, str):
        return value
    if value.strip().startswith("["):
        return json.loads(value)
    return tuple(name.strip() for name in value.split(",") if name.strip())


# A list of environment names, read from the environment as ``prod,eu-prod`` or ``["prod", "eu-prod"]``.
EnvironmentNames = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names)]


class DeployTrackerSettings(CommonSettings):
    """How the tracker consumes deployment reports and relays its events."""

    model_config = SettingsConfigDict(env_prefix="DEPLOY_TRACKER_", extra="ignore", populate_by_name=True)

    service_name: str = "deploy-tracker"
    # Its own database (DEPLOY_TRACKER_MONGODB_DATABASE); no other service reads or writes it.
    mongodb_database: str = "deploy_tracker"
    http_port: int = 8082
    consumer_group: str = "deploy-tracker"
    # The consumer group keeping the tracker's table of versions from registry.events (known_versions.py).
    versions_group: str = "deploy-tracker-versions"
    # Asking registration for a version the tracker does not know yet: how long to wait for its
    # answer, and how long a miss (or registration away) is not asked again.
    version_lookup_timeout_seconds: float = 5.0
    version_lookup_forget_seconds: float = 5.0
    batch_max_records: int = 500
    batch_timeout_ms: int = 20
    # The broker holds each fetch of registry.events (webhook fan-out, the table of versions) up to
    # this long for more records (0: answers at once): a batch costs a lookup and a write, so a
    # steady trickle of events costs less in fewer, larger batches. Deployment reports never wait,
    # and one naming a version the table does not know yet asks registration for it.
    events_linger_ms: int = Field(500, ge=0, le=5000)
    relay_interval_seconds: float = 0.2
    relay_batch_size: int = 1000
    # Environments where a version goes to work (deploying, deployed) only once approved.
    approval_environments: EnvironmentNames = ("prod",)
    # Environments where a version goes to work (deploying, deployed) only with verified provenance (a
    # signature one of its team's signing keys verified at registration); none by default.
    provenance_environments: EnvironmentNames = ()
    # ``Prefer: wait=<s>`` on the HTTP bridge: the longest wait granted, and how many requests may
    # wait at once (past that, the bridge answers 202 at once, as without the preference).
    report_wait_max_seconds: int = 30
    report_wait_concurrency: int = 64
    # Webhooks: delivery attempts, exponential backoff with jitter, per-request timeout.
    webhook_group: str = "deploy-tracker-webhooks"
    webhook_max_attempts: int = 6
    webhook_backoff_seconds: float = 2.0
    webhook_backoff_max_seconds: float = 600.0
    webhook_timeout_seconds: float = 5.0
    webhook_concurrency: int = 32
    # Each team's share of the concurrency: one team's slow endpoints never hold all of it.
    webhook_team_concurrency: int = 4
    webhook_dns_timeout_seconds: float = 2.0
    # How long a rotated-out secret still signs deliveries (the receiver's time to switch).
    webhook_secret_overlap_seconds: float = 86_400.0
    # Fernet keys sealing the stored signing secrets, comma-separated, newest first (secret_box.py).
    webhook_secret_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DEPLOY_TRACKER_WEBHOOK_SECRET_KEYS", "webhook_secret_keys")
    )
    webhook_recovery_seconds: float = 30.0
    # Webhook delivery records (``webhook_deliveries``) are deleted this long after they were
    # created (a MongoDB TTL index); 0 keeps them forever. Unprefixed: the name it had when shared.
    webhook_delivery_retention_days: float = Field(
        90.0,
        ge=0,
        validation_alias=AliasChoices("WEBHOOK_DELIVERY_RETENTION_DAYS", "webhook_delivery_retention_days"),
    )
    # Refuse webhook URLs resolving to any address that is not public unless allowed (tests).
    allow_private_webhooks: bool = False
