"""Registration service settings (``REGISTRATION_`` prefix over the shared ones)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.chassis.settings import CommonSettings


class RegistrationSettings(CommonSettings):
    """How the registration service consumes commands and relays its outbox.

    Every field is read from ``REGISTRATION_<FIELD>`` (e.g. ``REGISTRATION_DEPLOY_TRACKER_URL``);
    the README's settings table lists them.
    """

    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore", populate_by_name=True)

    service_name: str = "registration"
    # Its own database (REGISTRATION_MONGODB_DATABASE); no other service reads or writes it.
    mongodb_database: str = "registration"
    http_port: int = 8081
    consumer_group: str = "registration"
    # Reads the tracker's deployment_status_changed events on registry.events (where versions run,
    # for refusing to delete a deployed one) into registration's deployed_environments.
    deployments_group: str = "registration-deployments"
    # The tracker's internal API: its event log bootstraps deployed_environments on a first start
    # (retried in the background while the tracker is unreachable; the service serves meanwhile).
    deploy_tracker_url: str = "http://127.0.0.1:8082"
    batch_max_records: int = 500
    batch_timeout_ms: int = 20
    # The broker holds each fetch of registry.commands up to this long for more commands (0: answers
    # at once): each batch is one transaction, synced on commit, so a trickle commits a few at a time.
    commands_linger_ms: int = Field(20, ge=0, le=5000)
    # The broker holds each fetch of registry.events (where versions run, for refusing deletes)
    # up to this long for more records (0: answers at once): most of those records are
    # registration's own events, skipped, so a fetch and offset commit each cost for nothing.
    deployments_linger_ms: int = Field(100, ge=0, le=5000)
    relay_interval_seconds: float = 0.2
    relay_batch_size: int = 1000
    artifact_schemes: tuple[str, ...] = ("s3",)
    commit_retries: int = 5
    # HTTP writes that arrive while a transaction runs are committed together in the next one.
    http_group_commit_max: int = 500
    # Per-key limit on Kafka commands (HTTP requests have the shared RATE_LIMIT_* settings).
    command_rate_per_second: float = 500.0
    command_burst: int = 2000
    # Usable (unrevoked, unexpired) keys a team may hold; creating one more is refused (409).
    max_keys_per_team: int = 100
    # Teams a model may be shared with; one more is refused (409). Each reader team costs every
    # query replica a search index, and teams are implicit (any slug), so only a cap bounds them.
    max_shares_per_model: int = Field(default=50, ge=1)
    # Fernet keys (comma-separated, newest first) sealing API keys' signature verifiers; whatever
    # else issues keys (the init job, `registry up`) reads the same variable. Unset: derived from
    # EVENT_SIGNING_KEY, whose holders can already act for any key on the bus. Unprefixed: the
    # name it had when shared.
    key_verifier_sealing_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("KEY_VERIFIER_SEALING_KEYS", "key_verifier_sealing_keys")
    )
