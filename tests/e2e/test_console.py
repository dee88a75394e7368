"""The web console through its HTTP layer: sign-in, pages, team isolation, CSRF and scopes of its actions."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from tests.e2e.console_tools import console_client, hidden, new_team, sign_in
from tests.http_tools import ADMIN, acting_as, register, team_key
from tests.infra import Infra
from tests.waiting import until

pytestmark = pytest.mark.e2e
FRAGMENT = {"X-Console-Fragment": "1"}
DOCUMENTATION = "## Use\n\n<script>alert('owned')</script>\n\n[click](javascript:alert(1))\n\n**bold**"


@pytest.fixture
async def fraud(stack: EmbeddedStack) -> dict[str, str]:
    """A team with two versions of a documented, aliased model, and its all-scopes key."""
    team, key = await new_team(stack, "con")
    await register(stack, key, team, "scorer", "1.0.0", metrics={"auc": 0.90})
    await register(stack, key, team, "scorer", "1.1.0", metrics={"auc": 0.93}, description="Scores payments")
    async with acting_as(stack, "registration", key) as http:
        documented = await http.patch(
            f"/v1/models/{team}/scorer",
            json={
                "description": "Scores card payments",
                "documentation": DOCUMENTATION,
            },
        )
        aliased = await http.put(f"/v1/models/{team}/scorer/aliases/champion", json={"version": "1.0.0"})
    assert documented.status_code == 200 and aliased.status_code == 200
    # The console reads the query's read model, which follows these writes' events a moment later.
    async with acting_as(stack, "query", key) as http:

        async def projected() -> bool:
            model = (await http.get(f"/v1/models/{team}/scorer")).json()
            return bool(
                model.get("aliases") == {"champion": "1.0.0"} and model.get("description") == "Scores card payments"
            )

        await until(projected, what="the alias and the description in the query's read model")
    return {"team": team, "key": key}


class TestSignIn:
    async def test_a_key_opens_a_session_whose_cookie_is_not_the_key(
        self, stack: EmbeddedStack, fraud: dict[str, str], infra: Infra
    ) -> None:
        async with console_client(stack) as http:
            signed = await sign_in(http, fraud["key"], next_page=f"/console/teams/{fraud['team']}")
            page = await http.get(signed.headers["location"])
        assert signed.status_code == 303 and signed.headers["location"] == f"/console/teams/{fraud['team']}"
        cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("mr_console="))
        attributes = cookie.lower()
        assert "httponly" in attributes and "samesite=strict" in attributes and "path=/console" in attributes
        assert "secure" not in attributes  # served over plain HTTP here; Secure when over TLS
        assert fraud["key"] not in cookie and fraud["key"].split("_")[2] not in cookie
        assert page.status_code == 200 and "scorer" in page.text
        # The database holds the session under a hash, the key sealed: neither cookie nor key is readable there.
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
        try:
            session_id = cookie.split(";")[0].split("=", 1)[1]
            stored = (
                await client[service_database("query")]["console_sessions"]
                .find({"key_id": fraud["key"].split("_")[1]})
                .to_list()
            )
        finally:
            await client.close()
        assert stored and all(
            session_id not in repr(doc) and fraud["key"].split("_")[2] not in repr(doc) for doc in stored
        )

    async def test_a_wrong_key_is_refused_with_the_form_again(self, stack: EmbeddedStack) -> None:
        async with console_client(stack) as http:
            refused = await sign_in(http, "mr_AAAAAAAA_" + "x" * 43)
            malformed = await sign_in(http, "not a key")
        for answer in (refused, malformed):
            assert answer.status_code == 401 and "That key was not accepted." in answer.text
            assert "mr_console=" not in answer.headers.get("set-cookie", "")

    async def test_the_sign_in_form_needs_its_own_token(self, stack: EmbeddedStack, fraud: dict[str, str]) -> None:
        async with console_client(stack) as http:
            forged = await http.post("/console/sign-in", data={"api_key": fraud["key"], "sign_in_token": "guess"})
        assert forged.status_code == 403 and "mr_console=" not in forged.headers.get("set-cookie", "")

    async def test_sign_in_never_redirects_to_another_site(self, stack: EmbeddedStack, fraud: dict[str, str]) -> None:
        for target in ("//evil.example/console/x", "https://evil.example/", "/console/../v1/models", "/elsewhere"):
            async with console_client(stack) as http:
                signed = await sign_in(http, fraud["key"], next_page=target)
            location = signed.headers["location"]
            assert location == "/console/search" or (location.startswith("/console/") and "//" not in location)

    async def test_pages_need_a_session_and_fragments_say_where_to_sign_in(self, stack: EmbeddedStack) -> None:
        async with console_client(stack) as http:
            page = await http.get("/console/models/any/thing")
            fragment = await http.get("/console/search/results", headers=FRAGMENT)
            http.cookies.set("mr_console", "made-up")
            forged = await http.get("/console/search")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in?next=")
        assert fragment.status_code == 401 and fragment.headers["x-console-sign-in"].startswith("/console/sign-in")
        assert forged.status_code == 303

    async def test_sign_out_ends_the_session_everywhere(self, stack: EmbeddedStack, fraud: dict[str, str]) -> None:
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])
            page = await http.get("/console/search")
            cookie = http.cookies["mr_console"]
            out = await http.post("/console/sign-out", data={"csrf_token": hidden(page.text, "csrf_token")})
        async with console_client(stack) as other:
            other.cookies.set("mr_console", cookie)
            replayed = await other.get("/console/search")
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
        assert 'mr_console=""' in out.headers["set-cookie"] or "max-age=0" in out.headers["set-cookie"].lower()
        assert replayed.status_code == 303  # the old cookie opens nothing

    async def test_a_revoked_key_ends_its_sessions(self, stack: EmbeddedStack) -> None:
        team, _ = await new_team(stack, "rev")
        key = await team_key(stack, team, ["models:read"])
        async with console_client(stack) as http:
            await sign_in(http, key)
            assert (await http.get("/console/search")).status_code == 200
            async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as registration:
                revoked = await registration.delete(f"/v1/teams/{team}/api-keys/{key.split('_')[1]}")
            assert revoked.status_code in (200, 204)

            async def signed_out() -> bool:
                return (await http.get("/console/search")).status_code == 303

            await until(signed_out, timeout=10, what="the revoked key's session ended")


class TestPages:
    async def test_every_page_carries_a_strict_content_security_policy(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        team = fraud["team"]
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])
            pages = [
                await http.get(path)
                for path in (
                    "/console/search?q=scorer",
                    f"/console/models/{team}/scorer",
                    f"/console/teams/{team}",
                    f"/console/models/{team}/scorer/audit",
                    "/console/sign-in",
                )
            ]
        for page in pages:
            assert page.status_code == 200, page.text
            policy = page.headers["content-security-policy"]
            assert (
                "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            )
            assert page.headers["cache-control"] == "no-store" and "<script>" not in page.text.replace(
                '<script src="/console/static/console.js" defer></script>', ""
            )

    async def test_the_model_page_shows_what_a_reviewer_needs(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        team = fraud["team"]
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])
            page = (await http.get(f"/console/models/{team}/scorer")).text
        # Versions by SemVer, the alias, the latest version's metrics beside the previous version's.
        assert page.index(">1.1.0</a>") < page.index(">1.0.0</a>") and "@champion" in page
        assert "Metrics beside v1.0.0" in page and "+0.03" in page
        # The team's documentation is rendered, its HTML and javascript: links are not.
        assert "<strong>bold</strong>" in page and "&lt;script&gt;alert('owned')&lt;/script&gt;" in page
        assert "javascript:" not in page.replace("[click](javascript:alert(1))", "")
        assert 'id="shares"' in page  # the owner team sees its shares

    async def test_search_shows_results_and_facets_within_what_the_key_reads(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        other, other_key = await new_team(stack, "oth")
        await register(stack, other_key, other, "scorer", "9.0.0")
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])

            async def found() -> str | None:
                page = (await http.get("/console/search/results", params={"q": "scorer"}, headers=FRAGMENT)).text
                return page if f"{fraud['team']}/scorer" in page else None

            page = await until(found, what="the model searchable")
        assert f"{other}/scorer" not in page and other not in page  # neither the hit nor the team facet


class TestTeamIsolation:
    async def test_another_teams_model_is_as_missing_as_one_that_does_not_exist(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        _, outsider_key = await new_team(stack, "out")
        async with console_client(stack) as http:
            await sign_in(http, outsider_key)
            hidden_model = await http.get(f"/console/models/{fraud['team']}/scorer")
            absent_model = await http.get(f"/console/models/{fraud['team']}/no-such-model")
            hidden_audit = await http.get(f"/console/models/{fraud['team']}/scorer/audit")
            team_page = await http.get(f"/console/teams/{fraud['team']}")
        assert hidden_model.status_code == absent_model.status_code == hidden_audit.status_code == 404
        assert absent_model.text.replace("no-such-model", "scorer") == hidden_model.text
        assert team_page.status_code == 200 and "scorer" not in team_page.text

    async def test_a_reader_of_a_shared_model_sees_it_but_not_its_shares(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        reader, reader_key = await new_team(stack, "rdr")
        async with acting_as(stack, "registration", fraud["key"]) as http:
            assert (await http.put(f"/v1/models/{fraud['team']}/scorer/shares/{reader}")).status_code == 200
        async with console_client(stack) as http:
            await sign_in(http, reader_key)
            page = await http.get(f"/console/models/{fraud['team']}/scorer")
        assert page.status_code == 200 and "Scores card payments" in page.text and 'id="shares"' not in page.text


def _action_path(team: str, version: str = "1.1.0") -> str:
    return f"/console/models/{team}/scorer/versions/{version}/approval"


async def _approval(stack: EmbeddedStack, key: str, team: str) -> str:
    async with acting_as(stack, "query", key) as http:
        version = (await http.get(f"/v1/models/{team}/scorer/versions/1.1.0")).json()
    return str(version["approval"]["status"])


class TestActions:
    async def test_approving_runs_the_apis_command_and_shows_its_outcome(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        team = fraud["team"]
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])
            page = (await http.get(f"/console/models/{team}/scorer?version=1.1.0")).text
            done = await http.post(
                _action_path(team),
                data={"csrf_token": hidden(page, "csrf_token"), "decision": "approved", "comment": "looks right"},
            )
            after = await http.get(done.headers["location"])
            again = await http.get(done.headers["location"])
        assert done.status_code == 303 and f"{team}/scorer 1.1.0: approved" in after.text
        assert "flash ok" in after.text and "flash ok" not in again.text  # shown once
        assert await _approval(stack, fraud["key"], team) == "approved"
        assert "“looks right”" in after.text

    async def test_a_post_without_the_sessions_token_changes_nothing(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        team = fraud["team"]
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])
            missing = await http.post(_action_path(team), data={"decision": "approved"})
            wrong = await http.post(_action_path(team), data={"decision": "approved", "csrf_token": "x" * 43})
            json_post = await http.post(_action_path(team), json={"decision": "approved"})
        assert missing.status_code == wrong.status_code == 403 and json_post.status_code == 415
        assert "reload it and retry" in missing.text
        assert await _approval(stack, fraud["key"], team) == "pending"

    async def test_an_action_beyond_the_keys_scopes_is_refused_by_the_api(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        team = fraud["team"]
        writer = await team_key(stack, team, ["models:read", "models:write"])
        async with console_client(stack) as http:
            await sign_in(http, writer)
            page = (await http.get(f"/console/models/{team}/scorer?version=1.1.0")).text
            # The page offers no approval form to this key; a crafted post is refused by registration.
            crafted = await http.post(
                _action_path(team), data={"csrf_token": hidden(page, "csrf_token"), "decision": "approved"}
            )
            after = await http.get(crafted.headers["location"])
        assert 'value="approved"' not in page and 'name="alias"' in page
        assert "flash problem" in after.text and "this key lacks the models:approve scope (HTTP 403)" in after.text
        assert await _approval(stack, fraud["key"], team) == "pending"

    async def test_moving_an_alias_and_deprecating_a_version(self, stack: EmbeddedStack, fraud: dict[str, str]) -> None:
        team = fraud["team"]
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])
            page = (await http.get(f"/console/models/{team}/scorer?version=1.1.0")).text
            token = hidden(page, "csrf_token")
            moved = await http.post(
                f"/console/models/{team}/scorer/aliases",
                data={"csrf_token": token, "alias": "champion", "version": "1.1.0"},
            )
            shown = (await http.get(moved.headers["location"])).text
            refused = await http.post(
                f"/console/models/{team}/scorer/versions/1.1.0/lifecycle",
                data={"csrf_token": token, "state": "archived"},
            )
            refusal = (await http.get(refused.headers["location"])).text
        assert "alias champion → 1.1.0" in shown
        # Archiving an aliased version is refused by the API; the console shows its words.
        assert "flash problem" in refusal and "(HTTP 409)" in refusal
        async with acting_as(stack, "query", fraud["key"]) as api:
            assert (await api.get(f"/v1/models/{team}/scorer/versions/@champion")).json()["version"] == "1.1.0"

    async def test_the_audit_page_links_one_operation_across_services(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        team = fraud["team"]
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])

            async def audited() -> str | None:
                page = (await http.get(f"/console/models/{team}/scorer/audit")).text
                return page if "alias_set" in page else None

            page = await until(audited, what="the alias in the audit trail")
            correlation = re.search(r"audit\?correlation_id=([0-9a-f]+)", page)
            assert correlation
            one_operation = await http.get(f"/console/models/{team}/scorer/audit?correlation_id={correlation.group(1)}")
        assert one_operation.status_code == 200 and "Showing one operation" in one_operation.text


class TestBoundedWork:
    async def test_a_page_takes_one_rate_limit_token_however_many_reads_it_makes(
        self, stack: EmbeddedStack, fraud: dict[str, str]
    ) -> None:
        team = fraud["team"]
        async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
            made = await http.post(
                f"/v1/teams/{team}/api-keys",
                json={"name": "slow", "scopes": ["models:read"], "rate_limit": {"per_second": 0.01, "burst": 3}},
            )
        key = made.json()["token"]
        async with console_client(stack) as http:
            await sign_in(http, key)  # token 1
            model = await http.get(f"/console/models/{team}/scorer")  # token 2, though it reads six routes
            team_page = await http.get(f"/console/teams/{team}")  # token 3
            limited = await http.get(f"/console/models/{team}/scorer")
        assert model.status_code == 200 and team_page.status_code == 200
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "rate limit" in limited.text and limited.headers["content-type"].startswith("text/html")

    async def test_hostile_input_gets_a_precise_refusal(self, stack: EmbeddedStack, fraud: dict[str, str]) -> None:
        team = fraud["team"]
        async with console_client(stack) as http:
            await sign_in(http, fraud["key"])
            page = (await http.get(f"/console/models/{team}/scorer")).text
            token = hidden(page, "csrf_token")
            answers = {
                "long query": await http.get("/console/search", params={"q": "x" * 600}),
                "bad path": await http.get("/console/models/NOT%20A%20SLUG/x"),
                "nul in query": await http.get("/console/search", params={"q": "a\x00b"}),
                "bad version": await http.get(f"/console/models/{team}/scorer", params={"version": "{$gt:1}"}),
                "not utf-8": await http.post(
                    f"/console/models/{team}/scorer/aliases",
                    content=b"csrf_token=" + token.encode() + b"&alias=\xff\xfe",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                ),
                "too many fields": await http.post(
                    f"/console/models/{team}/scorer/aliases",
                    content="&".join(f"f{i}=x" for i in range(100)).encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                ),
                "bad decision": await http.post(_action_path(team), data={"csrf_token": token, "decision": "$where"}),
                "empty alias": await http.post(
                    f"/console/models/{team}/scorer/aliases", data={"csrf_token": token, "alias": "", "version": ""}
                ),
            }
        statuses = {what: answer.status_code for what, answer in answers.items()}
        assert statuses == {
            "long query": 422,
            "bad path": 422,
            "nul in query": 200,  # searched as text: the search API takes any words
            "bad version": 422,
            "not utf-8": 400,
            "too many fields": 400,
            "bad decision": 422,
            "empty alias": 422,
        }, {what: answer.text[:200] for what, answer in answers.items()}
