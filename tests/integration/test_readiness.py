"""Readiness follows MongoDB: 503 naming it while it is down, 200 again when it is back, same process."""

import sys
from pathlib import Path

import httpx
import pytest

from registry_cli.processes import Child
from registry_cli.stack import EmbeddedStack, StackError, service_env
from tests.infra import Infra
from tests.metrics_tools import scrape, total
from tests.throwaway import throwaway_settings
from tests.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.own_stack]


async def _ready_status(http: httpx.AsyncClient, wanted: int, *, timeout: float) -> httpx.Response:
    """The first ``/readyz`` answer with status ``wanted``; fails loudly after ``timeout`` s."""

    async def answered() -> httpx.Response | None:
        response = await http.get("/readyz")
        return response if response.status_code == wanted else None

    return await until(answered, timeout=timeout, what=f"/readyz answering {wanted}", interval=0.2)


async def _started_query(own: EmbeddedStack, log: Path) -> Child:
    """The query service started and ready on the private stack; its output is kept in ``log``.

    Once in a full suite run (not reproduced alone, nor under load) it exited with code 3 during
    start-up: a start-up failure, as when the stand-ins just started refuse it. As under
    ``registry up``, a service that exits at start is started again, once; the second failure
    fails the test with the service's own last lines, so the cause can be read.
    """
    for attempt in (1, 2):
        query = Child(
            "query", [sys.executable, "-m", "query"], env=service_env(own.settings, "query"), quiet=True, log_path=log
        )
        own.services["query"] = query
        await query.start()
        try:
            await own.wait_ready("query", 60)
            return query
        except StackError:
            await query.stop()  # exited already, or still starting: either way out of the next one's port
            if attempt == 2:
                tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
                pytest.fail("query did not start twice; its last lines:\n" + "\n".join(tail))
    raise AssertionError("unreachable")


async def test_readiness_flips_with_the_database_and_recovers_without_a_restart(infra: Infra, tmp_path: Path) -> None:
    if infra.stack is None:
        pytest.skip("needs the embedded stand-ins: it stops and restarts its own database server")
    own = EmbeddedStack(throwaway_settings(tmp_path), quiet=True)
    await own.start_infrastructure()  # a private database, so the outage hurts no other test
    log = tmp_path / "query.log"
    try:
        query = await _started_query(own, log)
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
