"""Fake registry answers for the client's unit tests (``httpx.MockTransport``): no server, no clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypedDict

import httpx

from registry_client import AsyncRegistryClient, RegistryClient, RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]
KEY = "mr_test0001_" + "a1B2" * 11
QUICK = RetryPolicy(attempts=4, backoff=0.01, max_delay=5.0)


class Artifact(TypedDict):
    framework: str
    artifact_uri: str


REGISTER: Artifact = {"framework": "xgboost", "artifact_uri": "s3://models/card/1.0.0"}


def version_json(team: str = "fraud", name: str = "card", version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {
        "model_id": "mdl_0123456789abcdef01234567",
        "team": team,
        "name": name,
        "version": version,
        "framework": "xgboost",
        "artifact_uri": f"s3://models/{name}/{version}",
        "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
        **fields,
    }


def model_json(team: str = "fraud", name: str = "card") -> dict[str, Any]:
    return {"model_id": f"mdl_{name}", "team": team, "name": name}


def problem(status: int, reason: str, detail: str = "refused", **fields: Any) -> httpx.Response:
    body = {"type": f"urn:registry:problem:{reason}", "title": reason, "status": status, "detail": detail, **fields}
    return httpx.Response(status, content=json.dumps(body), headers={"content-type": "application/problem+json"})


class Recorder:
    """Answers requests in turn from ``answers`` (a response, an exception to raise, or a handler) and keeps them."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)


def sync_client(handler: Handler, sleeps: list[float] | None = None, /, **options: Any) -> RegistryClient:
    client = RegistryClient(KEY, transport=httpx.MockTransport(handler), retry=options.pop("retry", QUICK), **options)
    client._sleep = (sleeps if sleeps is not None else []).append  # type: ignore[method-assign,assignment]
    return client


def async_client(handler: Handler, sleeps: list[float] | None = None, /, **options: Any) -> AsyncRegistryClient:
    client = AsyncRegistryClient(
        KEY, transport=httpx.MockTransport(handler), retry=options.pop("retry", QUICK), **options
    )
    recorded = sleeps if sleeps is not None else []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    client._sleep = sleep  # type: ignore[method-assign]
    return client
