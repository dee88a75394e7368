"""Running a service process: settings from the environment, JSON logs, uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from shared.logs import configure_logging
from shared.settings import CommonSettings

S = TypeVar("S", bound=CommonSettings)


def serve(settings_class: type[S], build_app: Callable[[S], FastAPI]) -> None:
    """Read settings, configure logging, and serve ``build_app(settings)`` until stopped."""
    settings = settings_class()
    configure_logging(service=settings.service_name, fmt=settings.log_format, level=settings.log_level)
    uvicorn.run(build_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)
