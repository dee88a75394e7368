"""The two clients: every operation of the API (defined once, in the mixins) over a sync or an async driver."""

from __future__ import annotations

from registry_client.admin import TeamAdmin
from registry_client.assistant import AssistantReads
from registry_client.audit import AuditReads
from registry_client.deployments import DeploymentReports
from registry_client.drivers import AsyncDriver, SyncDriver
from registry_client.history import HistoryReads
from registry_client.reads import ModelReads
from registry_client.writes import ModelWrites, VersionWrites


class RegistryApi(
    ModelReads, HistoryReads, AssistantReads, VersionWrites, ModelWrites, TeamAdmin, DeploymentReports, AuditReads
):
    """Every read and write of the registry's HTTP API, for either driver."""


class RegistryClient(RegistryApi, SyncDriver):
    """The registry's HTTP API, blocking (``httpx.Client``).

    ``RegistryClient(api_key=None, *, gateway_url=..., query_url=..., timeout=30, retry=RetryPolicy(), ...)``:
    the key (or an OpenID Connect token a team's trust rule matches) defaults to ``REGISTRY_API_KEY``,
    the URLs to the local stack's, the team a token acts for to ``REGISTRY_TEAM`` (see
    :class:`~registry_client.config.ClientOptions`). Use it as a context manager, or call :meth:`close`.
    Answers are the registry's own contract models; refusals raise :class:`~registry_client.RegistryError`
    subclasses; the correlation id of the last answer is :attr:`last_correlation_id`.
    """


class AsyncRegistryClient(RegistryApi, AsyncDriver):
    """The registry's HTTP API for asyncio (``httpx.AsyncClient``).

    The same methods as :class:`RegistryClient`, awaited, and lists as async iterators;
    ``async with``, or ``await client.close()``.
    """
