"""Throwaway stacks for tests and benchmarks: free ports, a temporary directory, quick group timings.

Test harness, not the stack's package: an operator's stack lives in its data directory and on
the ports it was given; these are made and removed around one test or one benchmark run.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from registry_cli.config import StackSettings, free_ports
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack, common_settings
from registry_contract.auth import PLATFORM_TEAM
from shared.chassis.keystore import issue_key
from shared.chassis.mongo import make_client
from shared.chassis.verifiers import VerifierBox


def throwaway_settings(data_dir: Path, **overrides: Any) -> StackSettings:
    """A stack on free ports with quick consumer-group timings, for tests and benchmarks."""
    names = (
        "kafka_port",
        "mongo_port",
        "audit_mongo_port",
        "query_port",
        "registration_port",
        "deploy_tracker_port",
        "audit_port",
        "prometheus_port",
        "alertmanager_port",
        "gateway_port",
    )
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    options: dict[str, Any] = {"session_timeout_ms": 2_000, "heartbeat_interval_ms": 500, **ports, **overrides}
    return StackSettings(data_dir=data_dir, **options)


async def unthrottled_admin_key(stack: EmbeddedStack, *, name: str) -> str:
    """A new ``platform:admin`` key whose rate limit is far above any load (benchmarks, chaos)."""
    settings = common_settings(stack.settings)
    client = make_client(settings)
    try:
        key, _ = await issue_key(
            client[service_database("registration")]["api_keys"],
            team=PLATFORM_TEAM,
            name=name,
            scopes=["platform:admin"],
            created_by=name,
            rate_limit=(1e6, 1_000_000),
            verifiers=VerifierBox.of(settings, sealing_keys=stack.settings.key_verifier_sealing_keys),  # it can sign
        )
    finally:
        await client.close()
    return key.token


@contextlib.asynccontextmanager
async def throwaway_stack(
    prefix: str,
    *,
    before_services: Callable[[EmbeddedStack], Awaitable[None]] | None = None,
    ready_timeout: float = 60.0,
) -> AsyncIterator[EmbeddedStack]:
    """A quiet stack on free ports in a temporary directory, stopped and removed afterwards.

    ``before_services`` runs once the broker and database are up (to seed keys or data).
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as data_dir:
        stack = EmbeddedStack(throwaway_settings(Path(data_dir)), quiet=True)
        try:
            await stack.start_infrastructure()
            if before_services is not None:
                await before_services(stack)
            await stack.start_services(timeout=ready_timeout)
            yield stack
        finally:
            await stack.stop()
