"""A revoked key stops working on every service within one second (issue 23's bound).

Registration owns the keys and refuses a revoked one at once; query, the tracker and audit cache
what registration's introspection answered, and drop a key as its ``api_key_revoked`` event arrives
(``shared.chassis.key_evictions``). The stack's key cache lasts ``KEY_CACHE_SECONDS`` = 1 s, so
expiry alone could meet the bound too: each service's eviction counter must have moved as well.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from tests.http_tools import ADMIN, team_key
from tests.metrics_tools import scrape, total

pytestmark = pytest.mark.e2e
BOUND_SECONDS = 1.0
POLL_SECONDS = 0.02
SCOPES = ["models:read", "audit:read", "team:admin"]


def probes(team: str) -> dict[str, str]:
    """A read each service answers 200 to a key of ``team`` with :data:`SCOPES`."""
    return {
        "registration": f"/v1/teams/{team}/api-keys",
        "query": "/v1/models",
        "deploy-tracker": f"/v1/teams/{team}/webhooks",
        "audit": "/v1/audit",
    }


async def evictions(stack: EmbeddedStack, service: str) -> float:
    samples, _ = await scrape(stack.url(service))
    return total(samples, "registry_key_evictions_total")


async def test_a_revoked_key_is_refused_by_every_service_within_one_second(stack: EmbeddedStack) -> None:
    team = f"rvk-{uuid.uuid4().hex[:8]}"
    token = await team_key(stack, team, SCOPES)
    key_id = token.split("_")[1]
    paths = probes(team)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=5) as http:
        for service, path in paths.items():  # every service has the key cached now
            answer = await http.get(f"{stack.url(service)}{path}")
            assert answer.status_code == 200, (service, answer.text)
        before = {service: await evictions(stack, service) for service in paths if service != "registration"}

        async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as admin:
            assert (await admin.delete(f"/v1/teams/{team}/api-keys/{key_id}")).status_code == 204
        revoked_at = time.monotonic()

        refused_after: dict[str, float] = {}
        while len(refused_after) < len(paths) and time.monotonic() - revoked_at < 10 * BOUND_SECONDS:
            for service, path in paths.items():
                if service not in refused_after and (await http.get(f"{stack.url(service)}{path}")).status_code == 401:
                    refused_after[service] = time.monotonic() - revoked_at
            await asyncio.sleep(POLL_SECONDS)

    assert set(refused_after) == set(paths), f"still accepted by {set(paths) - set(refused_after)}"
    assert max(refused_after.values()) < BOUND_SECONDS, refused_after
    # Evicted, not merely expired: each service dropped the key as its revocation event arrived.
    moved = {service: await evictions(stack, service) > count for service, count in before.items()}
    assert all(moved.values()), moved
