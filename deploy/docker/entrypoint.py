"""The image's entry point: ``python -m`` the service it was built for, listening on every interface.

The Dockerfile can neither turn ``deploy-tracker`` into the module ``deploy_tracker`` nor upper-case
it into the settings prefix ``DEPLOY_TRACKER_``, so this does, at start-up, from the ``SERVICE``
the image was built with. Settings given to the container win over these defaults.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

HTTP_PORT = "8080"  # the port the image exposes and its HEALTHCHECK probes


def service_module(service: str) -> str:
    """The Python module of a service (``deploy-tracker`` → ``deploy_tracker``)."""
    return service.replace("-", "_")


def service_environment(service: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with the service's HTTP host and port defaulted for a container."""
    prefix = service_module(service).upper()
    return {f"{prefix}_HTTP_HOST": "0.0.0.0", f"{prefix}_HTTP_PORT": HTTP_PORT, **environ}


def main() -> None:
    """Replace this process with the service's (so it stays PID 1 and gets the container's signals)."""
    service = os.environ.get("SERVICE", "")
    if not service:
        sys.exit("SERVICE is not set: build the image with --build-arg SERVICE=<service>")
    module = service_module(service)
    os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], service_environment(service, os.environ))


if __name__ == "__main__":
    main()
