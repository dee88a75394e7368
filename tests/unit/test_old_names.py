"""Names that moved keep working, with a deprecation warning: shared.contract and registry_cli.main's app."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def python(code: str) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: the warning is given once, at the first import.
    return subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-c", code], capture_output=True, text=True
    )


def test_shared_contract_is_the_contract_with_a_warning() -> None:
    done = python(
        "import shared.contract.messages as old, registry_contract.messages as new\n"
        "from shared.contract.envelope import CloudEvent\n"
        "import registry_contract.envelope\n"
        "assert old is new and CloudEvent is registry_contract.envelope.CloudEvent"
    )
    assert done.returncode == 0, done.stderr
    assert "DeprecationWarning: shared.contract moved" in done.stderr


def test_the_stacks_main_still_has_the_app_with_a_warning() -> None:
    done = python(
        "from registry_cli.main import app\nfrom registry_client.cli.main import app as new\nassert app is new"
    )
    assert done.returncode == 0, done.stderr
    assert "DeprecationWarning: registry_cli.main.app moved" in done.stderr
