"""Where the services are, which credential to send, and which correlation id a call carries.

The credential (``REGISTRY_API_KEY``) is sent as it is, ``Authorization: Bearer <credential>``: an
API key (``mr_<key id>_<secret>``) or an OpenID Connect token (a CI job's, a JWT) that one of a
team's trust rules matches. The client does not check its shape: the registry judges it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypedDict

from registry_client.consistency import ConsistencyTokens
from registry_client.retry import RetryPolicy
from registry_client.steps import SERVICES, Call, Service
from registry_contract import correlation
from registry_contract.ids import model_id

API_KEY_ENV = "REGISTRY_API_KEY"
TEAM_ENV = "REGISTRY_TEAM"
GATEWAY_URL_ENV = "REGISTRY_GATEWAY_URL"
DEFAULT_URLS: Mapping[Service, str] = {
    "registration": "http://127.0.0.1:8081",
    "query": "http://127.0.0.1:8080",
    "deploy-tracker": "http://127.0.0.1:8082",
    "audit": "http://127.0.0.1:8083",
}
URL_ENVS: Mapping[Service, str] = {
    "registration": "REGISTRY_REGISTRATION_URL",
    "query": "REGISTRY_QUERY_URL",
    "deploy-tracker": "REGISTRY_DEPLOY_TRACKER_URL",
    "audit": "REGISTRY_AUDIT_URL",
}
CORRELATION_HEADER = "X-Correlation-ID"
# Which team a token acts for: only that team's trust rules are tried (an API key has one team).
TEAM_HEADER = "X-Registry-Team"
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "registry-client/0.1"

_call_correlation: ContextVar[str | None] = ContextVar("registry_client_correlation", default=None)


@contextmanager
def correlated(correlation_id: str) -> Iterator[str]:
    """Send ``correlation_id`` on every call made inside the block (this thread or task only).

    It then shows on the registry's events, log lines and audit entries of those calls.
    """
    token = _call_correlation.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _call_correlation.reset(token)


@dataclass(frozen=True)
class ClientConfig:
    """What every call of one client shares."""

    urls: Mapping[Service, str]
    api_key: str | None
    retry: RetryPolicy
    correlation_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    team: str | None = None

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        *,
        gateway_url: str | None,
        urls: Mapping[Service, str | None],
        retry: RetryPolicy | None,
        correlation_id: str | None,
        timeout: float = DEFAULT_TIMEOUT,
        team: str | None = None,
    ) -> ClientConfig:
        """Arguments first, then the environment, then the local stack's ports.

        Within each, a service's own URL (``registration_url``…, ``REGISTRY_<SERVICE>_URL``) wins
        over a gateway's (``gateway_url``, ``REGISTRY_GATEWAY_URL``), which serves every service.
        The credential is ``api_key`` else ``REGISTRY_API_KEY``; the team a token acts for
        ``team`` else ``REGISTRY_TEAM`` (none: the header is not sent).
        """
        env_gateway = os.environ.get(GATEWAY_URL_ENV)

        def url_of(service: Service) -> str:
            chosen = urls.get(service) or gateway_url or os.environ.get(URL_ENVS[service]) or env_gateway
            return (chosen or DEFAULT_URLS[service]).rstrip("/")

        return cls(
            urls={service: url_of(service) for service in SERVICES},
            api_key=api_key or os.environ.get(API_KEY_ENV) or None,
            retry=retry or RetryPolicy(),
            correlation_id=correlation_id,
            timeout=timeout,
            team=team or os.environ.get(TEAM_ENV) or None,
        )

    def operation_correlation(self) -> str:
        """The correlation id of one operation, the same on all its tries and polls.

        That of the :func:`correlated` block, else the client's, else the service request's when
        called inside one, else a new one.
        """
        return _call_correlation.get() or self.correlation_id or correlation.current() or uuid.uuid4().hex

    def request(self, call: Call[Any], correlation_id: str) -> dict[str, Any]:
        """The arguments of ``httpx.Client.build_request`` for ``call``."""
        headers = {CORRELATION_HEADER: correlation_id, "User-Agent": USER_AGENT, **call.headers}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.team:
            headers[TEAM_HEADER] = self.team
        return {
            "method": call.method,
            "url": self.urls[call.service] + call.path,
            "params": call.params,
            "json": call.json,
            "headers": headers,
            "timeout": call.timeout or self.timeout,
        }


class ClientOptions(TypedDict, total=False):
    """The keyword options of :class:`~registry_client.RegistryClient` and its async twin.

    Keys:
        gateway_url: one address serving every service (a gateway or ingress).
        registration_url, query_url, deploy_tracker_url, audit_url: each service's own address
            (defaults: the local stack's ports 8081, 8080, 8082, 8083).
        timeout: seconds per request (connect, read, write, pool), 30 by default.
        retry: how often and how patiently requests are retried (:class:`RetryPolicy`).
        correlation_id: sent on every call of the client (default: a new one per operation).
        team: the team the credential acts for, sent as ``X-Registry-Team`` on every call (default
            ``REGISTRY_TEAM``, else none): an OpenID Connect token acts under that team's trust
            rules only.
        consistency: where the client keeps its writes' consistency tokens (share one
            :class:`~registry_client.consistency.ConsistencyTokens` between clients and a producer
            so each reads what the others wrote; default: one of its own).
    """

    gateway_url: str | None
    registration_url: str | None
    query_url: str | None
    deploy_tracker_url: str | None
    audit_url: str | None
    timeout: float
    retry: RetryPolicy | None
    correlation_id: str | None
    consistency: ConsistencyTokens | None
    team: str | None


class ApiBase:
    """What the operations of the API read from the client they run in."""

    config: ClientConfig

    def _configure(self, api_key: str | None, options: ClientOptions) -> None:
        self.config = ClientConfig.resolve(
            api_key,
            gateway_url=options.get("gateway_url"),
            urls={
                "registration": options.get("registration_url"),
                "query": options.get("query_url"),
                "deploy-tracker": options.get("deploy_tracker_url"),
                "audit": options.get("audit_url"),
            },
            retry=options.get("retry"),
            correlation_id=options.get("correlation_id"),
            timeout=options.get("timeout") or DEFAULT_TIMEOUT,
            team=options.get("team"),
        )
        self.last_correlation_id: str | None = None
        shared = options.get("consistency")
        self.consistency = shared if shared is not None else ConsistencyTokens.from_environment()
        self.last_consistency_token: str | None = None

    def consistency_token(self, team: str, name: str) -> str | None:
        """The tokens this client holds for ``team/name`` (comma-separated), to hand to another process.

        That process reads with them inside :func:`~registry_client.consistency.consistent` (or
        ``REGISTRY_CONSISTENCY``) and sees this client's writes of the model.
        """
        return ",".join(self.consistency.of_model(model_id(team, name))) or None
