"""The console quotes every path segment it builds: a query parameter never walks its reads to another path."""

from __future__ import annotations

import pytest

from registry_cli.stack import EmbeddedStack
from tests.e2e.console_tools import console_client, new_team, sign_in
from tests.http_tools import register

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("walk", ["../../../{team}/other/versions/1.0.0", "..", "1.0.0/../../../other"])
async def test_a_version_parameter_cannot_walk_the_read_to_another_model(stack: EmbeddedStack, walk: str) -> None:
    team, key = await new_team(stack, "path")
    await register(stack, key, team, "scorer", "2.0.0")
    await register(stack, key, team, "other", "1.0.0", artifact_uri="s3://models/other/the-other-artifact")
    async with console_client(stack) as http:
        await sign_in(http, key)
        page = await http.get(f"/console/models/{team}/scorer", params={"version": walk.format(team=team)})
        fair = await http.get(f"/console/models/{team}/other", params={"version": "1.0.0"})
    assert "the-other-artifact" not in page.text
    assert page.status_code in (404, 422), page.text[:300]  # no such version, or no version at all
    assert fair.status_code == 200 and "the-other-artifact" in fair.text  # the sentinel is shown where it belongs


@pytest.mark.parametrize("version", ["1.0.0/lineage", "latest/lineage", "@champion/lineage", "1.0.0%2Flineage", "x"])
async def test_a_version_parameter_that_is_no_version_is_refused_not_fetched(
    stack: EmbeddedStack, version: str
) -> None:
    # Quoting / as %2F did not keep it one segment: the in-process transport decodes it before
    # routing, so 1.0.0/lineage fetched the lineage as if it were the version, and the page failed 500.
    team, key = await new_team(stack, "path")
    await register(stack, key, team, "scorer", "1.0.0")
    async with console_client(stack) as http:
        await sign_in(http, key)
        page = await http.get(f"/console/models/{team}/scorer", params={"version": version})
    assert page.status_code == 422, page.text[:300]
