"""``python -m registration``: run the service alone against the configured Kafka and MongoDB."""

from __future__ import annotations

import uvicorn

from registration.app import build_app
from registration.config import RegistrationSettings
from shared.logs import configure_logging


def main() -> None:
    """Read settings from the environment and serve until stopped."""
    settings = RegistrationSettings()
    configure_logging(service=settings.service_name, fmt=settings.log_format, level=settings.log_level)
    uvicorn.run(build_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()
