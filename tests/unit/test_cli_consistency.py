"""The CLI's read commands take consistency tokens handed over (``--consistency``, ``REGISTRY_CONSISTENCY``)."""

import pytest
from typer.testing import CliRunner

from registry_client.cli.main import app

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "command",
    [["models", "show", "fraud", "card"], ["versions", "show", "fraud", "card", "1.0.0"], ["search", "fraud"]],
)
def test_a_malformed_token_is_a_usage_error_before_any_request(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--consistency", "r.mdl_nope.1"])
    assert result.exit_code == 2 and "Invalid value for --consistency" in result.output


def test_the_read_commands_say_what_the_option_is_for() -> None:
    result = CliRunner().invoke(app, ["models", "show", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "REGISTRY_CONSISTENCY" in result.output
