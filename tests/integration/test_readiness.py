"""Readiness follows MongoDB: 503 naming it while it is down, 200 again when it is back, same process."""

import sys
from pathlib import Path

import httpx
import pytest

from registry_cli.config import throwaway_settings
from registry_cli.processes import Child
from registry_cli.stack import EmbeddedStack, service_env
from tests.infra import Infra
from tests.metrics_tools import scrape, total
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _ready_status(http: httpx.AsyncClient, wanted: int, *, timeout: float) -> httpx.Response:
    """The first ``/readyz`` answer with status ``wanted``; fails loudly after ``timeout`` s."""

    async def answered() -> httpx.Response | None:
        response = await http.get("/readyz")
        return response if response.status_code == wanted else None

    return await until(answered, timeout=timeout, what=f"/readyz answering {wanted}", interval=0.2)


async def test_readiness_flips_with_the_database_and_recovers_without_a_restart(infra: Infra, tmp_path: Path) -> None:
    if infra.stack is None:
        pytest.skip("needs the embedded stand-ins: it stops and restarts its own database server")
    own = EmbeddedStack(throwaway_settings(tmp_path), quiet=True)
    await own.start_infrastructure()  # a private database, so the outage hurts no other test
    query = Child("query", [sys.executable, "-m", "query"], env=service_env(own.settings, "query"), quiet=True)
    own.services["query"] = query
    try:
        await query.start()
        await own.wait_ready("query", 60)
        pid = query.process.pid if query.process else None
        async with httpx.AsyncClient(base_url=own.url("query"), timeout=10) as http:
            assert own.mongo is not None
            await own.mongo.stop()

            down = await _ready_status(http, 503, timeout=30)
            assert down.headers["content-type"].startswith("application/problem+json")
            problem = down.json()
            assert problem["detail"] == "unreachable: mongodb"
            assert [error["dependency"] for error in problem["errors"]] == ["mongodb"]
            assert (await http.get("/healthz")).status_code == 200  # alive: no restart wanted
            samples, _ = await scrape(own.url("query"))
            assert total(samples, "registry_dependency_up", dependency="mongodb") == 0
            assert total(samples, "registry_dependency_up", dependency="kafka") == 1

            await own.mongo.start()
            await _ready_status(http, 200, timeout=60)
            samples, _ = await scrape(own.url("query"))
            assert total(samples, "registry_dependency_up", dependency="mongodb") == 1
        assert query.returncode is None and query.process is not None and query.process.pid == pid
    finally:
        await own.stop()
