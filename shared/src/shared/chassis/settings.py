"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# An origin as browsers send it: scheme and host (and port), no path, no wildcard, no trailing slash.
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/*?#@]+")


class ConfigurationError(RuntimeError):
    """A service cannot start with these settings; the message says what to set."""


def _shared(name: str) -> AliasChoices:
    """The unprefixed variable ``NAME`` (and the field's own name, for keyword arguments)."""
    return AliasChoices(name.upper(), name)


class CommonSettings(BaseSettings):
    """Connection and behaviour settings every service reads.

    The defaults are the real-infrastructure defaults; the embedded stack overrides the few
    that its stand-ins (an embedded Kafka broker and MongoDB server) need.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    service_name: str = "registry"
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias=_shared("kafka_bootstrap_servers"))
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=_shared("kafka_security_protocol")
    )
    kafka_sasl_mechanism: str | None = Field(None, validation_alias=_shared("kafka_sasl_mechanism"))
    kafka_sasl_username: str | None = Field(None, validation_alias=_shared("kafka_sasl_username"))
    kafka_sasl_password: str | None = Field(None, validation_alias=_shared("kafka_sasl_password"))
    # TLS to the brokers (SSL, SASL_SSL): the CA that signed them (default: the system's), and a
    # client certificate for mutual TLS (shared.chassis.kafka_security).
    kafka_ssl_cafile: str | None = Field(None, validation_alias=_shared("kafka_ssl_cafile"))
    kafka_ssl_certfile: str | None = Field(None, validation_alias=_shared("kafka_ssl_certfile"))
    kafka_ssl_keyfile: str | None = Field(None, validation_alias=_shared("kafka_ssl_keyfile"))
    kafka_ssl_key_password: SecretStr | None = Field(None, validation_alias=_shared("kafka_ssl_key_password"))
    # The embedded stack turns this off: its stand-in broker cannot initialise producer ids.
    kafka_enable_idempotence: bool = Field(True, validation_alias=_shared("kafka_enable_idempotence"))
    kafka_session_timeout_ms: int = Field(10_000, validation_alias=_shared("kafka_session_timeout_ms"))
    kafka_heartbeat_interval_ms: int = Field(3_000, validation_alias=_shared("kafka_heartbeat_interval_ms"))
    kafka_fetch_max_wait_ms: int = Field(500, validation_alias=_shared("kafka_fetch_max_wait_ms"))
    # A consumer that read nothing for 0.1 s and has nothing left to read has its fetch wait doubled,
    # up to this (under the 40 s request time-out); as records come it gets its own configured wait
    # back (shared.chassis.fetch_waits). For brokers that answer a fetch only once its wait is over, as
    # the embedded one does. 0: waits stay as configured (Kafka answers as soon as a record lands).
    kafka_fetch_idle_max_wait_ms: int = Field(
        0, ge=0, le=30_000, validation_alias=_shared("kafka_fetch_idle_max_wait_ms")
    )
    # Static group membership (KIP-345): a restarted process with the same id gets its partitions
    # back at once instead of waiting out its old session and a rebalance. Unique per replica
    # (the pod name, say); unset: dynamic membership. Not for the embedded broker, whose joins it slows.
    kafka_group_instance_id: str | None = Field(None, validation_alias=_shared("kafka_group_instance_id"))

    mongodb_uri: str = Field("mongodb://127.0.0.1:27017/", validation_alias=_shared("mongodb_uri"))
    # Each service's own database, read from its prefixed variable (REGISTRATION_MONGODB_DATABASE,
    # QUERY_…, DEPLOY_TRACKER_…, AUDIT_…): never a shared one, so no variable points every service
    # at one database. No other service reads or writes it (each service's config sets its default).
    mongodb_database: str = "model_registry"

    topic_commands: str = Field("registry.commands", validation_alias=_shared("topic_commands"))
    topic_events: str = Field("registry.events", validation_alias=_shared("topic_events"))
    topic_deploy: str = Field("deploy.events", validation_alias=_shared("topic_deploy"))
    topic_access: str = Field("registry.access", validation_alias=_shared("topic_access"))

    # The secret every service signs its records with (shared.chassis.signing); a rotation keeps the old
    # one as EVENT_SIGNING_PREVIOUS_KEY until every service has the new one.
    event_signing_key: SecretStr | None = Field(None, validation_alias=_shared("event_signing_key"))
    event_signing_previous_key: SecretStr | None = Field(None, validation_alias=_shared("event_signing_previous_key"))

    # Producers sign Kafka records with their API key (registry_contract.record_signing). A record
    # with a bearer key instead (``authorization: Bearer mr_…``, the earlier form) is refused as
    # unauthenticated unless this transition setting accepts it; new installations refuse.
    kafka_accept_bearer_keys: bool = Field(False, validation_alias=_shared("kafka_accept_bearer_keys"))
    # A signed record's ce_time may be this far from the broker's append time (or the consumer's
    # clock, where the topic keeps producers' create times); outside it the record is refused.
    kafka_signature_window_seconds: float = Field(
        300.0, gt=0, validation_alias=_shared("kafka_signature_window_seconds")
    )
    # Where the other services fetch verifiers: registration's internal route (never behind the gateway).
    registration_internal_url: str = Field(
        "http://127.0.0.1:8081", validation_alias=_shared("registration_internal_url")
    )
    # The credential services present on internal routes; unset: derived from EVENT_SIGNING_KEY.
    internal_api_token: SecretStr | None = Field(None, validation_alias=_shared("internal_api_token"))
    # The CA that internal HTTPS calls trust (default: the system's).
    internal_ca_file: str | None = Field(None, validation_alias=_shared("internal_ca_file"))

    # Access control: per-key token buckets, key cache, failure alerting.
    rate_limit_per_second: float = Field(50.0, validation_alias=_shared("rate_limit_per_second"))
    rate_limit_burst: int = Field(100, validation_alias=_shared("rate_limit_burst"))
    key_cache_seconds: float = Field(5.0, validation_alias=_shared("key_cache_seconds"))
    auth_failure_threshold: int = Field(20, validation_alias=_shared("auth_failure_threshold"))
    auth_failure_window_seconds: float = Field(60.0, validation_alias=_shared("auth_failure_window_seconds"))

    # Consumers: a record that keeps failing is dead-lettered after this many attempts; a batch
    # that fails on a dependency is retried after an exponential pause up to the maximum.
    consumer_max_attempts: int = Field(3, validation_alias=_shared("consumer_max_attempts"))
    consumer_backoff_seconds: float = Field(1.0, validation_alias=_shared("consumer_backoff_seconds"))
    consumer_backoff_max_seconds: float = Field(30.0, validation_alias=_shared("consumer_backoff_max_seconds"))
    # A consumer group with lag whose committed offsets have not moved for this long is stalled.
    consumer_stall_seconds: float = Field(120.0, validation_alias=_shared("consumer_stall_seconds"))

    # How often consuming services ask the broker for their groups' lag (registry_consumer_lag).
    lag_sample_seconds: float = Field(15.0, validation_alias=_shared("lag_sample_seconds"))
    # How often dependencies are re-checked for registry_dependency_up (``/readyz`` checks live).
    readiness_sample_seconds: float = Field(10.0, validation_alias=_shared("readiness_sample_seconds"))

    # Each shutdown step (background tasks, Kafka, MongoDB) gets this long before it is abandoned.
    shutdown_grace_seconds: float = Field(10.0, validation_alias=_shared("shutdown_grace_seconds"))
    # A stopping service waits this long for open HTTP requests and connections before closing
    # them: an idle keep-alive connection over TLS is otherwise held until its peer reads again.
    http_shutdown_seconds: int = Field(5, ge=0, validation_alias=_shared("http_shutdown_seconds"))
    # A background task that dies is restarted after a pause doubling from the first to the
    # maximum; it counts as up again (``/readyz``, registry_background_task_up) once it has run
    # for the settle time, which also starts the pauses afresh.
    background_task_restart_seconds: float = Field(
        1.0, gt=0, validation_alias=_shared("background_task_restart_seconds")
    )
    background_task_restart_max_seconds: float = Field(
        30.0, gt=0, validation_alias=_shared("background_task_restart_max_seconds")
    )
    background_task_settle_seconds: float = Field(5.0, ge=0, validation_alias=_shared("background_task_settle_seconds"))

    # HTTP request bodies over this are refused with 413 before parsing (the Kafka payload cap).
    max_body_bytes: int = Field(256 * 1024, validation_alias=_shared("max_body_bytes"))
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # HTTPS served by the service itself (no terminating proxy in front): PEM chain and key.
    http_tls_cert_file: str | None = Field(None, validation_alias=_shared("http_tls_cert_file"))
    http_tls_key_file: str | None = Field(None, validation_alias=_shared("http_tls_key_file"))
    # Browser origins allowed to call the HTTP APIs with credentials (CORS), e.g.
    # '["https://console.example.com"]'. None by default: then no response carries CORS headers.
    # Explicit origins only: "*" together with credentials would let any web page use a caller's key.
    cors_allowed_origins: list[str] = Field(default_factory=list, validation_alias=_shared("cors_allowed_origins"))
    # Proxies (addresses or networks, e.g. '["172.30.0.10"]') whose X-Forwarded-Proto and
    # X-Forwarded-For are believed: behind a TLS-terminating gateway the request counts as HTTPS
    # (the console's cookies stay Secure) and the client is the gateway's caller. None by
    # default: then those headers are ignored, from whoever sends them.
    trusted_proxies: list[str] = Field(default_factory=list, validation_alias=_shared("trusted_proxies"))
    # "auto": human-readable on a terminal, JSON lines otherwise (pipes, containers, files).
    log_format: Literal["auto", "json", "console"] = Field("auto", validation_alias=_shared("log_format"))
    log_level: str = Field("INFO", validation_alias=_shared("log_level"))

    @field_validator("cors_allowed_origins")
    @classmethod
    def _explicit_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], no path, no wildcard")
        return origins

    @field_validator("trusted_proxies")
    @classmethod
    def _listed_proxies(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network (no names, no wildcard)") from None
        return proxies

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets ``field``: what a refusal names as the setting that would allow it."""
        alias = cls.model_fields[field].validation_alias  # an alias is the whole variable name, unprefixed
        if isinstance(alias, AliasChoices):
            alias = str(alias.choices[0])
        return (alias if isinstance(alias, str) else str(cls.model_config.get("env_prefix") or "") + field).upper()

    def all_topics(self) -> list[str]:
        """Every topic of the contract, without dead-letter topics."""
        return [self.topic_commands, self.topic_events, self.topic_deploy, self.topic_access]
