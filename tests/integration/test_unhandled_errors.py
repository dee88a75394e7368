"""A bug in a route still answers problem+json, keeps the correlation id, and is counted as a 500."""

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

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


async def test_a_database_that_is_away_is_a_retryable_503_not_a_bug(infra: Infra) -> None:
    # Clients and the error budget read a 500 "internal" as a bug; a request that fails only because
    # the database is away (its TLS front killed under load, say) succeeds once it is back.
    settings = CommonSettings(
        service_name="away-test",
        kafka_bootstrap_servers=infra.kafka_bootstrap,
        mongodb_uri=infra.mongodb_uri,
        event_signing_key=infra.signing_key,
    )
    service = service_app(settings=settings, client=make_client(settings), broker=make_broker(settings))

    @service.app.get("/away")
    async def away() -> None:
        raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")

    transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        before = total(
            parse((await http.get("/metrics")).text)[0], "registry_http_requests_total", route="/away", status="503"
        )
        response = await http.get("/away")
        after = total(
            parse((await http.get("/metrics")).text)[0], "registry_http_requests_total", route="/away", status="503"
        )
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["type"] == "urn:registry:problem:unavailable"
    assert "27017" not in response.text  # the dependency's address stays in the log
    assert after == before + 1
