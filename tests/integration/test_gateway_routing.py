"""The gateway (real nginx, deploy/gateway/registry.conf.template) sends every route to the service that serves it.

Four recording upstreams stand in for the services, so what is checked is nginx's routing alone:
every method and path of every service's OpenAPI document (and the console and MCP routes, which
are not in it) must arrive at that service, and nothing else at any.
"""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from registry_cli.config import StackSettings
from registry_cli.gateway import nginx_argv, write_config
from registry_cli.processes import wait_for_port
from tests.routes import APPS, documented_routes
from tests.throwaway import throwaway_settings
from tests.waiting import serving

pytestmark = pytest.mark.integration


class Recorder:
    """An upstream that answers every request with the name of the service it stands in for."""

    def __init__(self, service: str) -> None:
        self.service, self.seen = service, 0

    async def endpoint(self, request: Request) -> JSONResponse:
        self.seen += 1
        await request.body()
        return JSONResponse({"service": self.service, "path": request.url.path})

    def routes(self) -> list[Route]:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        return [Route("/{path:path}", self.endpoint, methods=methods)]


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[StackSettings, dict[str, Recorder]]]:
    recorders = {service: Recorder(service) for service in APPS}
    async with contextlib.AsyncExitStack() as stack:
        ports = {name: await stack.enter_async_context(serving(r.routes())) for name, r in recorders.items()}
        settings = throwaway_settings(Path(tmp_path_factory.mktemp("gateway")))
        config = write_config(settings, upstreams=ports)
        nginx = await asyncio.create_subprocess_exec(*nginx_argv(settings, config))
        try:
            await wait_for_port(settings.host, settings.gateway_port, timeout=20)
            yield settings, recorders
        finally:
            nginx.terminate()
            await nginx.wait()


def client(settings: StackSettings) -> httpx.AsyncClient:
    ca = str(settings.data_dir / "tls" / "ca.pem")
    verify = ssl.create_default_context(cafile=ca)
    return httpx.AsyncClient(base_url=f"https://{settings.host}:{settings.gateway_port}", verify=verify, timeout=10)


async def test_every_documented_route_reaches_the_service_that_serves_it(
    gateway: tuple[StackSettings, dict[str, Recorder]],
) -> None:
    settings, _ = gateway
    routes = documented_routes()
    assert len(routes) > 40  # the four documents were read
    wrong = []
    async with client(settings) as http:
        for service, method, path in routes:
            response = await http.request(method, path, content=b"{}" if method in {"POST", "PUT", "PATCH"} else None)
            answered = response.json().get("service") if response.status_code == 200 else response.status_code
            if answered != service or response.json()["path"] != path:
                wrong.append((method, path, service, answered))
    assert wrong == [], wrong


async def test_the_edge_answers_health_hides_operations_and_refuses_what_no_service_serves(
    gateway: tuple[StackSettings, dict[str, Recorder]],
) -> None:
    settings, recorders = gateway
    before = sum(r.seen for r in recorders.values())
    async with client(settings) as http:
        assert (await http.get("/healthz")).text == "ok\n"
        for path in ("/metrics", "/readyz", "/internal", "/v2/models"):
            response = await http.get(path)
            assert response.status_code == 404, path
        assert (await http.get("/anything")).headers["content-type"] == "application/problem+json"
    assert sum(r.seen for r in recorders.values()) == before


async def test_a_body_over_the_limit_is_refused_at_the_edge_and_never_reaches_a_service(
    gateway: tuple[StackSettings, dict[str, Recorder]],
) -> None:
    settings, recorders = gateway
    before = recorders["registration"].seen
    async with client(settings) as http:
        ok = await http.post("/v1/models/t/m/versions", content=b"x" * (256 * 1024))
        too_big = await http.post("/v1/models/t/m/versions", content=b"x" * (256 * 1024 + 1))
    assert ok.status_code == 200 and too_big.status_code == 413
    assert recorders["registration"].seen == before + 1


async def test_only_tls_is_served(gateway: tuple[StackSettings, dict[str, Recorder]]) -> None:
    settings, _ = gateway
    async with httpx.AsyncClient(base_url=f"http://{settings.host}:{settings.gateway_port}", timeout=5) as plain:
        response = await plain.get("/healthz")
    assert response.status_code == 400  # nginx: "plain HTTP request was sent to HTTPS port"
    async with httpx.AsyncClient(base_url=f"https://{settings.host}:{settings.gateway_port}", timeout=5) as unknown_ca:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await unknown_ca.get("/healthz")
