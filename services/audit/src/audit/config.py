"""Audit service settings (``AUDIT_`` prefix over the shared ones)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.chassis.settings import CommonSettings


class AuditSettings(CommonSettings):
    """How the audit service consumes every topic."""

    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", populate_by_name=True)

    service_name: str = "audit"
    # Its own database (AUDIT_MONGODB_DATABASE); no other service reads or writes it.
    mongodb_database: str = "audit"
    http_port: int = 8083
    consumer_group: str = "audit"
    batch_max_records: int = 2000
    batch_timeout_ms: int = 50
    # The broker holds each fetch up to this long for more records (0: answers at once): every
    # batch is one transaction that reads and moves its chains' heads, so fewer, larger batches
    # cost the audit service and its database less per entry, for entries that show this much later.
    # 500 ms (with DEPLOY_TRACKER_EVENTS_LINGER_MS at 500 too) cut one client's CPU a version from
    # 14.0 to 11.6 ms, but under the soak the audit service then held 45 MB more (95 → 140 MB,
    # flat from its second minute), against 10 MB at 100: memory that stays flat comes first.
    batch_linger_ms: int = Field(100, ge=0, le=5000)
    # The audit service's Ed25519 private key (64 hex digits, the seed, or PEM): it signs the
    # chains' heads and checkpoints; its public key is published (GET /v1/audit/public-keys).
    # Kept outside the database (a Secret), like EVENT_SIGNING_KEY.
    signing_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUDIT_SIGNING_KEY", "signing_key"), repr=False
    )
    # Public keys (64 hex digits or PEM, comma-separated) of earlier signing keys: what they
    # signed still verifies. Listed as "retired" by GET /v1/audit/public-keys.
    retired_public_keys: str = ""
    # Legacy HMAC key of chains written before signed chains: needed once to verify and migrate
    # them at start, and afterwards only to check the contents of their pre-migration entries.
    chain_key: SecretStr | None = Field(None, validation_alias=AliasChoices("AUDIT_CHAIN_KEY", "chain_key"))
    # Entries of the access topic (reads, writes, denials: the bulk of the log) expire this long
    # after they were received; every other entry is kept for ever. 0 keeps access entries too.
    access_retention_days: float = Field(90.0, ge=0)
    # The audit log's own database server, if it has one (the embedded stack gives it one, so the
    # largest writer does not queue behind the others on one single-threaded stand-in). Unset: the
    # shared MONGODB_URI, the usual arrangement on a real MongoDB cluster. Either way the log is in
    # the audit service's own database (AUDIT_MONGODB_DATABASE); API keys are registration's, asked
    # of it over HTTP.
    log_mongodb_uri: str | None = Field(
        None, validation_alias=AliasChoices("AUDIT_MONGODB_URI", "log_mongodb_uri"), repr=False
    )

    def log_settings(self) -> AuditSettings:
        """These settings with the audit log's database as the one to connect to."""
        if not self.log_mongodb_uri:
            return self
        return self.model_copy(update={"mongodb_uri": self.log_mongodb_uri})

    def retention(self) -> dict[str, timedelta]:
        """How long the entries of each expiring topic are kept (whole seconds)."""
        if not self.access_retention_days:
            return {}
        return {self.topic_access: timedelta(seconds=round(self.access_retention_days * 86_400))}
