"""The observing middleware records a successful read as a read and a successful write as a write."""

from types import SimpleNamespace
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from starlette.routing import Route

from registry_contract import messages
from registry_contract.auth import Principal
from shared.chassis.http_observe import Observe
from shared.chassis.problems import Problem, install

pytestmark = pytest.mark.unit
ADMIN = Principal("admin001", "fraud", frozenset({"team:admin"}))


class Recorder:
    """What :class:`shared.chassis.access.AccessLog` was asked to record."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def record(self, event_type: str, **fields: Any) -> None:
        self.events.append((event_type, fields))


async def authenticated(request: Request) -> Principal:
    request.state.principal = ADMIN  # what the Guard does for a valid key
    return ADMIN


Caller = Annotated[Principal, Depends(authenticated)]


def observed_app() -> tuple[FastAPI, Recorder]:
    app = FastAPI()
    install(app)
    recorder = Recorder()
    app.state.service = SimpleNamespace(access=recorder)

    @app.post("/v1/teams/{team}/api-keys", status_code=201)
    async def create(team: str, caller: Caller) -> dict[str, str]:
        return {"key_id": "newkey01"}

    @app.delete("/v1/teams/{team}/api-keys/{key_id}", status_code=204)
    async def revoke(team: str, key_id: str, caller: Caller) -> Response:
        return Response(status_code=204)

    @app.put("/v1/models/{team}/{name}/aliases/{alias}")
    async def refused(caller: Caller) -> None:
        raise Problem("conflict", "no")

    @app.get("/v1/models/{team}/{name}")
    async def read(caller: Caller) -> dict[str, str]:
        return {}

    async def protocol(request: Request) -> Response:  # a mounted transport, like MCP's
        request.state.principal = ADMIN
        return Response("{}", media_type="application/json")

    app.router.routes.append(Route("/mcp", protocol, methods=["POST"]))
    app.add_middleware(Observe)
    return app, recorder


async def test_successful_writes_are_recorded_with_principal_correlation_id_method_and_path() -> None:
    app, recorder = observed_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        created = await http.post("/v1/teams/fraud/api-keys", headers={"X-Correlation-ID": "c-create"})
        revoked = await http.delete("/v1/teams/fraud/api-keys/oldkey01", headers={"X-Correlation-ID": "c-revoke"})
    assert (created.status_code, revoked.status_code) == (201, 204)
    assert recorder.events == [
        (
            messages.ACCESS_WRITE,
            {
                "principal": ADMIN,
                "method": "POST",
                "path": "/v1/teams/fraud/api-keys",
                "status": 201,
                "resource_team": "fraud",
                "correlation_id": "c-create",
            },
        ),
        (
            messages.ACCESS_WRITE,
            {
                "principal": ADMIN,
                "method": "DELETE",
                "path": "/v1/teams/fraud/api-keys/oldkey01",
                "status": 204,
                "resource_team": "fraud",
                "correlation_id": "c-revoke",
            },
        ),
    ]


async def test_a_refused_write_a_read_and_a_protocol_post_are_not_writes() -> None:
    app, recorder = observed_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.put("/v1/models/fraud/m/aliases/prod")).status_code == 409
        assert (await http.get("/v1/models/fraud/m")).status_code == 200
        assert (await http.post("/mcp", json={"jsonrpc": "2.0"})).status_code == 200
    assert [event_type for event_type, _ in recorder.events] == [messages.ACCESS_READ]
