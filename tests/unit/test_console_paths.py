"""The console refuses a version or alias that is not one before it builds an API path from it."""

from __future__ import annotations

import pytest

from query.console.web import ConsoleRefusal, checked_alias, checked_version

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("version", ["1.4.0", "2.0.0-rc.1+build.7", "latest", "@champion"])
def test_versions_the_api_can_look_up_pass_the_console_check(version: str) -> None:
    assert checked_version(version) == version


@pytest.mark.parametrize("version", ["1.0.0/lineage", "..", "@", "@Bad/x", "latest/", "1.0", "", "1.0.0?x=1"])
def test_anything_else_is_refused_before_the_console_builds_a_path(version: str) -> None:
    with pytest.raises(ConsoleRefusal) as refused:
        checked_version(version)
    assert refused.value.status == 422


@pytest.mark.parametrize("alias", ["x/y", "..", "Champion", "", "a%2Fb"])
def test_an_alias_that_is_no_slug_is_refused(alias: str) -> None:
    with pytest.raises(ConsoleRefusal):
        checked_alias(alias)
    assert checked_alias("champion") == "champion"
