"""The client and the CLI ask for the past: ``as_of`` on the reads, an alias's history, an environment's timeline."""

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from typer.testing import CliRunner

from registry_client.cli.main import app
from tests.client_fakes import Recorder, async_client, sync_client, version_json

pytestmark = pytest.mark.unit
NIGHT = datetime(2026, 3, 14, 2, 14, tzinfo=timezone(timedelta(hours=1)))


def move(version: str) -> dict[str, object]:
    return {
        "alias": "champion",
        "action": "moved",
        "version": version,
        "previous_version": "1.0.0",
        "at": "2026-03-01T00:00:00Z",
        "event_id": f"e-{version}",
    }


def change(version: str) -> dict[str, object]:
    return {
        "environment": "prod",
        "version": version,
        "previous_status": None,
        "status": "deployed",
        "at": "2026-03-01T00:00:00Z",
        "occurred_at": "2026-03-01T00:00:00Z",
        "report_id": f"r-{version}",
    }


class TestAsOf:
    def test_an_aware_time_is_sent_with_its_offset(self) -> None:
        fake = Recorder(httpx.Response(200, json=version_json(version="1.4.0")))
        with sync_client(fake) as client:
            found = client.get_version("fraud", "card", "@champion", as_of=NIGHT)
        assert found.version == "1.4.0"
        (request,) = fake.requests
        assert request.url.path == "/v1/models/fraud/card/versions/@champion"
        assert request.url.params["as_of"] == "2026-03-14T02:14:00+01:00"

    async def test_the_version_list_takes_it_as_a_filter(self) -> None:
        fake = Recorder(httpx.Response(200, json={"items": [version_json()], "next_cursor": None}))
        async with async_client(fake) as client:
            found = [v.version async for v in client.versions("fraud", "card", as_of=NIGHT)]
        assert found == ["1.0.0"] and fake.requests[0].url.params["as_of"] == NIGHT.isoformat()

    def test_without_it_nothing_is_sent(self) -> None:
        fake = Recorder(httpx.Response(200, json={"items": []}))
        with sync_client(fake) as client:
            client.list_aliases("fraud", "card")
        assert "as_of" not in fake.requests[0].url.params


class TestHistories:
    def test_the_alias_history_follows_every_page(self) -> None:
        def pages(request: httpx.Request) -> httpx.Response:
            cursor = request.url.params.get("cursor")
            following = {None: "p2", "p2": None}[cursor]
            return httpx.Response(200, json={"items": [move("1.1.0" if cursor else "1.0.1")], "next_cursor": following})

        fake = Recorder(pages)
        with sync_client(fake) as client:
            moves = list(client.alias_history("fraud", "card", "champion", page_size=1))
        assert [m.version for m in moves] == ["1.0.1", "1.1.0"]
        assert fake.requests[0].url.path == "/v1/models/fraud/card/aliases/champion/history"
        assert moves[0].at == datetime(2026, 3, 1, tzinfo=UTC)

    def test_the_environment_timeline_is_one_route_per_environment(self) -> None:
        fake = Recorder(httpx.Response(200, json={"items": [change("1.4.0")], "next_cursor": None}))
        with sync_client(fake) as client:
            page = client.environment_timeline_page("fraud", "card", "prod", limit=10)
        assert [c.report_id for c in page.items] == ["r-1.4.0"]
        assert fake.requests[0].url.path == "/v1/models/fraud/card/environments/prod/timeline"
        assert fake.requests[0].url.params["limit"] == "10"


class TestTheCommandLine:
    @pytest.mark.parametrize("when", ["2026-03-14T02:14:00", "yesterday"])
    def test_a_time_without_an_offset_is_a_usage_error_before_any_request(self, when: str) -> None:
        result = CliRunner().invoke(app, ["versions", "show", "fraud", "card", "@champion", "--as-of", when])
        assert result.exit_code == 2 and "--as-of" in result.output

    def test_the_history_commands_are_listed(self) -> None:
        result = CliRunner().invoke(app, ["history", "--help"], terminal_width=200)
        assert result.exit_code == 0
        assert all(command in result.output for command in ("alias", "environment", "model"))
