"""``registry export documents`` refuses an empty --since instead of exporting everything again."""

import pytest
from typer.testing import CliRunner

from registry_client.cli.main import app

pytestmark = pytest.mark.unit


def test_an_empty_since_is_a_usage_error_not_a_full_export() -> None:
    # What `--since "$CURSOR"` passes when the shell variable was never set.
    result = CliRunner().invoke(app, ["export", "documents", "--since", "", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "--since is empty" in result.output
