"""A package whose commands fail to load costs only its own commands, never the user's."""

from importlib import metadata
from types import SimpleNamespace

import pytest

from registry_client.cli import main

pytestmark = pytest.mark.unit


def broken() -> None:
    raise ImportError("no module named registry_cli.stack")


def test_a_broken_plugin_is_a_warning(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    entry = SimpleNamespace(value="registry_cli.main:register", load=broken)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [entry])
    main._load_plugins()
    assert "the commands of registry_cli.main:register are unavailable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needed"),
    [
        (["registry"], True),  # help lists every command
        (["registry", "--help"], True),
        (["registry", "up", "--tls"], True),
        (["registry", "audit", "verify"], True),
        (["registry", "audit"], True),
        (["registry", "search", "card fraud", "--team", "fraud"], False),
        (["registry", "audit", "list", "--team", "fraud"], False),
        (["/venv/bin/registry", "produce", "register", "--wait", "30"], False),
    ],
)
def test_a_users_command_does_not_load_the_stacks(argv: list[str], needed: bool) -> None:
    assert main.needs_plugins(argv, {}) is needed


def test_shell_completion_and_an_import_as_a_library_load_every_command() -> None:
    assert main.needs_plugins(["registry", "search"], {"_REGISTRY_COMPLETE": "bash_complete"})
    assert main.needs_plugins(["/venv/bin/pytest", "-k", "search"], {})
