"""Settings of the embedded local stack (``REGISTRY_STACK_`` prefix; the earlier ``REGISTRY_`` names still work)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from urllib.parse import quote

from pydantic import AliasChoices, AliasGenerator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry_cli.secrets import load_or_create

# With --tls the databases require a user (registry_cli.database_users); this one is the stack's own.
DATABASE_ADMIN = "registry-admin"
PREFIX = "REGISTRY_STACK_"
# The stack's settings had the client's prefix before; those names are still read, after the new ones.
EARLIER_PREFIX = "REGISTRY_"


def _variables(field: str) -> AliasChoices:
    return AliasChoices(PREFIX + field.upper(), EARLIER_PREFIX + field.upper())


class StackSettings(BaseSettings):
    """Ports, data directory and stand-in tuning of ``registry up``."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=_variables),
    )

    host: str = "127.0.0.1"
    kafka_port: int = 9092
    mongo_port: int = 27017
    # The audit log's own database server: the largest writer, and it reads nothing the others
    # write, so on two single-threaded stand-ins the stack uses two cores (docs/operations.md).
    audit_mongo_port: int = 27018
    query_port: int = 8080
    registration_port: int = 8081
    deploy_tracker_port: int = 8082
    audit_port: int = 8083
    data_dir: Path = Path(".data")
    partitions: int = 6
    bootstrap_admin_key: str | None = None
    # Seals the verifiers of the keys the stack issues (its bootstrap key, benchmarks' keys): the
    # variable registration reads, which the stack's services inherit. Unset: derived from the
    # stack's event signing key, as registration derives it.
    key_verifier_sealing_keys: SecretStr | None = Field(
        None, validation_alias=AliasChoices("KEY_VERIFIER_SEALING_KEYS", "key_verifier_sealing_keys")
    )
    # Shorter group timings than Kafka's defaults: a join takes ~5 s otherwise, and a
    # service restarted after a crash waits out its old session before it gets partitions back.
    session_timeout_ms: int = 3_000
    heartbeat_interval_ms: int = 500
    # The stand-in broker answers a fetch only once its wait is over: a short wait, for latency, and a
    # quiet consumer's grows up to fetch_idle_max_wait_ms (the services' KAFKA_FETCH_IDLE_MAX_WAIT_MS).
    fetch_max_wait_ms: int = 20
    fetch_idle_max_wait_ms: int = 100
    log_format: str = "json"
    # How long the database keeps a transaction whose client died (mongod's
    # transactionLifetimeLimitSeconds, 60 s): a restarted service waits that long on its locks.
    mongo_transaction_lifetime_seconds: float = 10.0
    # `registry up --with-prometheus` / `make observe`: Debian's `prometheus` package (or any build).
    prometheus_bin: str = "prometheus"
    prometheus_port: int = 9090
    prometheus_scrape_interval: str = "5s"
    # ... and Alertmanager beside it (Debian's `prometheus-alertmanager` package), routing as
    # deploy/alertmanager/alertmanager.yml does; each receiver posts to <alert_webhook_url>/<receiver>
    # when that is set (else alerts show only in Alertmanager's UI).
    alertmanager_bin: str = "prometheus-alertmanager"
    alertmanager_port: int = 9093
    alert_webhook_url: str | None = None
    # `registry up --with-gateway`: nginx (Debian's `nginx` package) as the one TLS entry point.
    nginx_bin: str = "nginx"
    gateway_port: int = 8443
    # `registry up --tls`: TLS on every hop (broker, both databases with client certificates,
    # the services' own HTTPS), with certificates from the data directory's CA (registry_cli.stack_tls).
    tls: bool = False
    # With --tls, each TLS front (registry_cli.tls_proxy): how many connections it holds at once
    # (more are closed before their handshake) and how long one may carry nothing before it is closed.
    tls_front_max_connections: int = 1024
    tls_front_idle_seconds: float = 600.0

    @property
    def tls_dir(self) -> Path:
        """Where the stack's CA and certificates live."""
        return self.data_dir / "tls"

    @property
    def mongo_data_dir(self) -> Path:
        """Where the shared database server keeps its files."""
        return self.data_dir / "mongo"

    @property
    def audit_mongo_data_dir(self) -> Path:
        """Where the audit log's database server keeps its files."""
        return self.data_dir / "audit-mongo"

    @property
    def scheme(self) -> str:
        """``https`` when the services serve TLS, else ``http``."""
        return "https" if self.tls else "http"

    @property
    def kafka_bootstrap(self) -> str:
        """The broker address clients use."""
        return f"{self.host}:{self.kafka_port}"

    @property
    def mongodb_uri(self) -> str:
        """Connection string with the stand-in's workaround: no retryable writes, which it does not support."""
        return self._mongo_uri(self.mongo_port)

    @property
    def audit_mongodb_uri(self) -> str:
        """Connection string of the audit log's own server."""
        return self._mongo_uri(self.audit_mongo_port)

    def service_mongodb_uri(self, service: str, *, audit_server: bool = False) -> str:
        """The connection string a service is given: as its own database user with ``--tls``."""
        return self._mongo_uri(self.audit_mongo_port if audit_server else self.mongo_port, service)

    def _mongo_uri(self, port: int, user: str = DATABASE_ADMIN) -> str:
        if not self.tls:
            return f"mongodb://{self.host}:{port}/?retryWrites=false&directConnection=true"
        # The server's CA, this client's certificate (the fronts require one), and a database user
        # (the servers behind them require one: registry_cli.database_users).
        password = load_or_create(self.data_dir).database_password(user)
        tls = self.tls_dir.resolve()
        return (
            f"mongodb://{quote(user, safe='')}:{password}@{self.host}:{port}/?retryWrites=false&directConnection=true"
            "&authSource=admin&authMechanism=SCRAM-SHA-256"
            f"&tls=true&tlsCAFile={tls / 'ca.pem'}&tlsCertificateKeyFile={tls / 'client-combined.pem'}"
        )

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable that sets ``field``: what a message names as the setting to change."""
        alias = cls.model_fields[field].validation_alias
        return str(alias.choices[0]) if isinstance(alias, AliasChoices) else PREFIX + field.upper()

    def service_ports(self) -> dict[str, int]:
        """HTTP port of each service, by service name."""
        return {
            "registration": self.registration_port,
            "query": self.query_port,
            "deploy-tracker": self.deploy_tracker_port,
            "audit": self.audit_port,
        }


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports nothing listens on right now.

    All are held open until all are chosen: ports asked for one at a time may come back twice
    (a stack's broker and its query service were once given the same one).
    """
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
