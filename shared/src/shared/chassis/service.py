"""Running a service process: settings from the environment, JSON logs, uvicorn."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from shared.chassis.logs import configure_logging
from shared.chassis.settings import CommonSettings, ConfigurationError

S = TypeVar("S", bound=CommonSettings)


def serve(settings_class: type[S], build_app: Callable[[S], FastAPI]) -> None:
    """Read settings, configure logging, and serve ``build_app(settings)`` until stopped.

    Settings that cannot work end the process with one line saying what to set (exit code 2).
    """
    try:
        settings = settings_class()
        configure_logging(service=settings.service_name, fmt=settings.log_format, level=settings.log_level)
        if bool(settings.http_tls_cert_file) != bool(settings.http_tls_key_file):
            raise ConfigurationError("HTTPS needs both HTTP_TLS_CERT_FILE and HTTP_TLS_KEY_FILE")
        app = build_app(settings)
    except (ConfigurationError, ValidationError) as exc:
        line = f"cannot start: {exc}" if isinstance(exc, ConfigurationError) else _one_line(exc)
        print(line.splitlines()[0], file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        ssl_certfile=settings.http_tls_cert_file,
        ssl_keyfile=settings.http_tls_key_file,
        # Forwarded headers are the app's business, believed from TRUSTED_PROXIES only
        # (uvicorn's own default would believe any process on 127.0.0.1).
        proxy_headers=False,
        timeout_graceful_shutdown=settings.http_shutdown_seconds,
    )


def _one_line(exc: ValidationError) -> str:
    fields = ", ".join(".".join(map(str, error["loc"])) + f": {error['msg']}" for error in exc.errors())
    return f"cannot start: invalid settings ({fields})"
