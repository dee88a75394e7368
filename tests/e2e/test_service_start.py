"""A service started with settings that cannot work says what to set, in one line, and exits 2."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("module", "env", "says"),
    [
        ("registration", {}, "EVENT_SIGNING_KEY is not set"),
        ("audit", {"EVENT_SIGNING_KEY": "k" * 32, "AUDIT_CHAIN_KEY": ""}, "AUDIT_CHAIN_KEY must be at least 16 bytes"),
        ("audit", {"EVENT_SIGNING_KEY": "k" * 32}, "AUDIT_SIGNING_KEY is not set"),
        ("audit", {"EVENT_SIGNING_KEY": "k" * 32, "AUDIT_SIGNING_KEY": "x"}, "AUDIT_SIGNING_KEY is not an Ed25519"),
        ("query", {"EVENT_SIGNING_KEY": "k" * 32, "QUERY_HTTP_PORT": "x"}, "invalid settings (http_port"),
    ],
)
def test_a_service_that_cannot_start_says_why_in_one_line(module: str, env: dict[str, str], says: str) -> None:
    secrets = ("EVENT_SIGNING_KEY", "AUDIT_CHAIN_KEY", "AUDIT_SIGNING_KEY")
    clean = {k: v for k, v in os.environ.items() if k not in secrets}
    done = subprocess.run(
        [sys.executable, "-m", module], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and says in done.stderr


@pytest.mark.parametrize("module", ["registration", "query", "deploy_tracker", "audit"])
def test_a_service_process_loads_no_terminal_library(module: str) -> None:
    # rich and pygments are installed for the CLI; structlog and httpx would load them into every
    # service (colour tracebacks, httpx's own command line) although a service logs JSON.
    script = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m, v in sys.modules.items() if v is not None})))\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k != "EVENT_SIGNING_KEY"}
    done = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr  # imported everything, then stopped: no signing key
    loaded = set(done.stdout.strip().strip("[]").replace("'", "").split(", "))
    assert {"structlog", "httpx", module} <= loaded
    assert not loaded & {"rich", "pygments"}
