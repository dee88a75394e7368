"""How a service is served: what uvicorn is told."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from shared.chassis import service
from shared.chassis.settings import CommonSettings

pytestmark = pytest.mark.unit


def test_a_stopping_service_waits_a_bounded_time_for_open_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the bound, an idle keep-alive connection over TLS held a service's exit for as long
    # as its peer did not read (ten seconds, until the supervisor killed it).
    told: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: told.update(options))
    monkeypatch.setenv("HTTP_SHUTDOWN_SECONDS", "3")
    service.serve(CommonSettings, lambda settings: FastAPI())
    assert told["timeout_graceful_shutdown"] == 3
