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
