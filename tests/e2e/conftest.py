"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest

from registry_cli.stack import EmbeddedStack
from tests.http_tools import APPROVER_SCOPES, WRITER_SCOPES, Team, team_key, team_name


@pytest.fixture
async def team(stack: EmbeddedStack) -> Team:
    """A fresh team with a writer's key and an approver's."""
    name = team_name()
    return Team(name, await team_key(stack, name, WRITER_SCOPES), await team_key(stack, name, APPROVER_SCOPES))
