"""A bug in a route still answers problem+json, keeps the correlation id, and is counted as a 500."""

import httpx
import pytest

from shared.chassis.http_app import service_app
from shared.chassis.kafka import make_broker
from shared.chassis.mongo import make_client
from shared.chassis.settings import CommonSettings
from tests.infra import Infra
from tests.metrics_tools import Samples, parse, total

pytestmark = pytest.mark.integration


async def test_an_unhandled_exception_is_a_counted_problem_500(infra: Infra) -> None:
    settings = CommonSettings(
        service_name="boom-test",
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        mongodb_uri=infra.mongodb_uri,
        event_signing_key=infra.signing_key,
    )
    service = service_app(settings=settings, client=make_client(settings), broker=make_broker(settings))

    @service.app.get("/boom/{thing}")
    async def boom(thing: str) -> None:
        raise RuntimeError(f"bug while handling {thing}")

    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:

        async def _samples(http: httpx.AsyncClient) -> Samples:
            return parse((await http.get("/metrics")).text)[0]

        before = total(await _samples(http), "registry_http_requests_total", route="/boom/{thing}", status="500")
        response = await http.get("/boom/x", headers={"X-Correlation-ID": "bug-1"})
        after = total(await _samples(http), "registry_http_requests_total", route="/boom/{thing}", status="500")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-correlation-id"] == "bug-1"
    assert "bug while handling" not in response.text  # internals stay in the log
    assert after == before + 1
