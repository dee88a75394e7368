"""The Model Registry's Python client: sync and async, typed with the registry's own contract models.

See docs/client.md. ``RegistryClient``/``AsyncRegistryClient`` speak the HTTP API;
``registry_client.kafka`` publishes commands and deployment reports to Kafka.
"""

from registry_client.client import AsyncRegistryClient, RegistryApi, RegistryClient
from registry_client.config import correlated
from registry_client.consistency import ConsistencyTokens, consistent
from registry_client.errors import (
    BadSignature,
    Conflict,
    DuplicateVersion,
    Forbidden,
    Invalid,
    NotApproved,
    NotFound,
    RateLimited,
    RegistryError,
    Unauthenticated,
    Unsigned,
    WaitTimedOut,
)
from registry_client.retry import NO_RETRY, RetryPolicy

__all__ = [
    "NO_RETRY",
    "AsyncRegistryClient",
    "BadSignature",
    "Conflict",
    "ConsistencyTokens",
    "DuplicateVersion",
    "Forbidden",
    "Invalid",
    "NotApproved",
    "NotFound",
    "RateLimited",
    "RegistryApi",
    "RegistryClient",
    "RegistryError",
    "RetryPolicy",
    "Unauthenticated",
    "Unsigned",
    "WaitTimedOut",
    "consistent",
    "correlated",
]
