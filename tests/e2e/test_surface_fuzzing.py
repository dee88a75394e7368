"""The surfaces OpenAPI does not describe well, fuzzed with Hypothesis against the running stack.

Search syntax, feed cursors, MCP tool arguments and console forms take free text that is parsed
further than a schema can say. For each: whatever the input, no 5xx, and nothing of another team's
private model (its team, its name, a codeword only its description holds) reaches the caller. The
schema-driven fuzzing of every documented route is ``test_api_fuzzing``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from registry_cli.stack import EmbeddedStack
from tests.e2e.console_tools import CONSOLE_SCOPES, hidden
from tests.http_tools import ADMIN, register
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EXAMPLES = 60
MCP_TOOLS = [
    "search_models",
    "get_model",
    "list_versions",
    "get_model_card",
    "get_deployment_status",
    "compare_versions",
]
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Teams:
    """A reader team with a model, and another team's private model the reader must never see."""

    reader: str
    reader_key: str
    secret_team: str
    secret_model: str
    codeword: str


async def _key(stack: EmbeddedStack, team: str) -> str:
    # A generous rate limit: the fuzzer sends hundreds of requests and must reach the parsers.
    body = {"name": "fuzz", "scopes": CONSOLE_SCOPES, "rate_limit": {"per_second": 500, "burst": 500}}
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=ADMIN) as http:
        response = await http.post(f"/v1/teams/{team}/api-keys", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


@pytest.fixture(scope="module")
async def teams(stack: EmbeddedStack) -> Teams:
    suffix = uuid.uuid4().hex[:6]
    reader, secret_team = f"fz-reader-{suffix}", f"fz-secret-{suffix}"
    codeword = f"zx{uuid.uuid4().hex[:10]}"
    reader_key, secret_key = await _key(stack, reader), await _key(stack, secret_team)
    await register(stack, secret_key, secret_team, "hushed", "1.0.0", description=f"{codeword} private model")
    await register(stack, reader_key, reader, "public", "1.0.0", description=f"{codeword} readable model")
    await register(stack, reader_key, reader, "public", "1.1.0-rc.1", description="a prerelease")

    async def searchable() -> bool:
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=_bearer(reader_key)) as http:
            found = await http.get("/v1/assistant/search", params={"q": codeword})
        return found.status_code == 200 and bool(found.json()["items"])

    await until(searchable, what="the reader's model searchable")
    return Teams(reader, reader_key, secret_team, "hushed", codeword)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _fuzz(examples: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case)

    run()


def _retry_later(response: httpx.Response) -> bool:
    """Whether ``response`` is the 503 ``unavailable`` problem a caller is told to retry."""
    return response.status_code == 503 and "Retry-After" in response.headers and "unavailable" in response.text


def _no_server_error(response: httpx.Response, what: object, seen: set[int] | None = None) -> None:
    assert response.status_code < 500, f"{what!r} -> {response.status_code}: {response.text[:300]}"
    if seen is not None:
        seen.add(response.status_code)


# Pieces of Tantivy's query language and of ours, hostile characters, and the words in play.
def _search_terms(teams: Teams) -> st.SearchStrategy[str]:
    syntax = [
        '"', ":", "*", "(", ")", "+", "-", "~", "^2", "[", "]", "{", "}", "\\", "AND", "OR", "NOT", "TO",
        "name:", "team:", "description:", "tag:", "framework:", "status:", "metric:", "IN", "[a TO z]",
        "\x00", "\u202e", "\ud7ff", "\U0001f600", "a" * 300, teams.codeword, teams.codeword[:5] + "*",
        f"team:{teams.secret_team}", f"name:{teams.secret_model}", f'"{teams.codeword} hushed"',
    ]  # fmt: skip
    token = st.one_of(st.sampled_from(syntax), st.text(max_size=12))
    return st.lists(token, max_size=8).map(" ".join)


def _items_teams(body: dict[str, Any]) -> set[str]:
    return {str(item.get("model", item).get("team")) for item in body.get("items", [])}


async def test_search_syntax_never_errors_nor_reveals_a_private_model(stack: EmbeddedStack, teams: Teams) -> None:
    seen: set[int] = set()

    def check(http: httpx.Client, q: str) -> None:
        response = http.get("/v1/assistant/search", params={"q": q, "limit": 50})
        _no_server_error(response, q, seen)
        if response.status_code == 200:
            body = response.json()
            assert teams.secret_team not in _items_teams(body), q
            assert teams.secret_team not in json.dumps(body.get("facets", {})), q
            assert "private model" not in response.text, q

    def fuzz() -> None:
        with httpx.Client(base_url=stack.url("query"), headers=_bearer(teams.reader_key), timeout=15) as http:
            _fuzz(EXAMPLES * 2, _search_terms(teams), lambda q: check(http, q))

    await asyncio.to_thread(fuzz)
    assert 200 in seen, seen  # the fuzzer reached the search itself, not only the validation


def _mutations(cursor: str) -> st.SearchStrategy[str]:
    """A valid cursor cut, flipped, padded, re-encoded, or replaced by arbitrary text."""
    raw = cursor.encode()
    flipped = st.tuples(st.integers(0, max(len(raw) - 1, 0)), st.integers(1, 255)).map(
        lambda at: (raw[: at[0]] + bytes([raw[at[0]] ^ at[1]]) + raw[at[0] + 1 :]).decode("latin-1")
    )
    forged = st.binary(max_size=120).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
    return st.one_of(
        flipped,
        st.integers(0, len(cursor)).map(lambda n: cursor[:n]),
        st.text(max_size=80).map(lambda tail: cursor + tail),
        forged,
        st.text(max_size=200),
        st.just("\x00" * 10),
    )


async def test_feed_cursors_never_error_nor_reveal_a_private_model(stack: EmbeddedStack, teams: Teams) -> None:
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=_bearer(teams.reader_key)) as http:
        first = await http.get("/v1/assistant/documents", params={"limit": 1})
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"] or "x"

    seen: set[int] = set()

    def check(http: httpx.Client, mutated: str) -> None:
        response = http.get("/v1/assistant/documents", params={"cursor": mutated, "limit": 20})
        _no_server_error(response, mutated, seen)
        assert "private model" not in response.text and teams.secret_model not in response.text, mutated

    def fuzz() -> None:
        with httpx.Client(base_url=stack.url("query"), headers=_bearer(teams.reader_key), timeout=15) as http:
            _fuzz(EXAMPLES, _mutations(cursor), lambda mutated: check(http, mutated))

    await asyncio.to_thread(fuzz)
    assert {200, 422} <= seen or {200, 400} <= seen, seen  # some cursors decoded, some were refused


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _tool_calls(teams: Teams) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    plausible = st.sampled_from(
        [teams.reader, "public", teams.secret_team, teams.secret_model, "1.0.0", "latest", "@champion",
         "../../v1/models", "%2e%2e%2f", teams.codeword, "", "x" * 5000, "1.0.0+b", ">=1.0.0", "\x00"]
    )  # fmt: skip
    value = st.one_of(plausible, _JSON)
    names = [
        *("team", "name", "version", "versions", "query", "cursor", "limit"),
        *("environment", "framework", "status", "range"),
    ]
    arguments = st.dictionaries(st.sampled_from([*names, "extra"]), value, max_size=6)
    model = {"team": teams.reader, "name": "public"}
    calls: list[tuple[str, dict[str, Any]]] = (
        [("search_models", {"query": teams.codeword}), ("get_model", model), ("list_versions", model),
         ("get_model_card", model), ("get_deployment_status", {**model, "version": "1.0.0"}),
         ("compare_versions", {**model, "versions": ["1.0.0", "latest"]})]
    )  # fmt: skip
    valid = st.sampled_from(calls)
    # Well-formed calls, then the same with one argument replaced or added, then anything at all.
    mangled = st.tuples(valid, st.sampled_from(names), value).map(lambda t: (t[0][0], {**t[0][1], t[1]: t[2]}))
    return st.one_of(valid, mangled, st.tuples(st.sampled_from(MCP_TOOLS), arguments))


async def test_mcp_tool_arguments_never_error_nor_reveal_a_private_model(stack: EmbeddedStack, teams: Teams) -> None:
    outcomes: set[str] = set()

    def check(http: httpx.Client, call: tuple[str, dict[str, Any]]) -> None:
        tool, arguments = call
        message = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
        response = http.post("/mcp", json=message)
        _no_server_error(response, call)
        if response.status_code != 200:
            return
        answer = response.json()
        result = answer.get("result") or {}
        outcomes.add("error" if answer.get("error") or result.get("isError") else "answer")
        if tool == "search_models" and not result.get("isError"):
            assert teams.secret_team not in _items_teams(result.get("structuredContent") or {}), call
        elif isinstance(arguments, dict) and arguments.get("team") == teams.secret_team:
            # Asking for the hidden model by name answers as for an absent one: an error, no content.
            # (An argument the tool does not take may name the team: it is ignored, as any extra is.)
            assert answer.get("error") or result.get("isError"), call
        assert "private model" not in response.text, call

    def fuzz() -> None:
        headers = {**_bearer(teams.reader_key), **MCP_HEADERS}
        with httpx.Client(base_url=stack.url("query"), headers=headers, timeout=15) as http:
            _fuzz(EXAMPLES * 2, _tool_calls(teams), lambda call: check(http, call))

    await asyncio.to_thread(fuzz)
    assert outcomes == {"answer", "error"}, outcomes  # tools ran, and refused what they should


_FORM_VALUE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["approved", "rejected", "pending", "deprecated", "archived", "active", "1.0.0", "\x00", "x" * 9000]
    ),
)
_FORM = st.dictionaries(
    st.sampled_from(["csrf_token", "decision", "comment", "alias", "version", "state", "idempotency_key", "q", "zz"]),
    _FORM_VALUE,
    max_size=6,
)


def _console_paths(teams: Teams) -> st.SearchStrategy[str]:
    segments = st.sampled_from(
        [teams.reader, "public", teams.secret_team, teams.secret_model, "1.0.0", "1.1.0-rc.1", "..", "%2e%2e",
         "a" * 200, "%00", "UPPER", "-"]
    )  # fmt: skip
    shapes = [
        "/console/models/{}/{}/versions/{}/approval",
        "/console/models/{}/{}/versions/{}/lifecycle",
        "/console/models/{}/{}/aliases",
    ]
    anything = st.tuples(st.sampled_from(shapes), segments, segments, segments).map(
        lambda parts: parts[0].format(*parts[1:]) if parts[0].count("{}") == 3 else parts[0].format(*parts[1:3])
    )
    # The reader's own version, half the time: the forms behind the path checks are fuzzed too.
    own = st.sampled_from([shape.format(teams.reader, "public", "1.0.0") for shape in shapes])
    return st.one_of(own, anything)


def _signed_in(stack: EmbeddedStack, team: str, key: str) -> tuple[httpx.Client, str]:
    http = httpx.Client(base_url=stack.url("query"), follow_redirects=False, timeout=15)
    form = http.get("/console/sign-in")
    fields = {"sign_in_token": hidden(form.text, "sign_in_token"), "next": hidden(form.text, "next"), "api_key": key}
    assert http.post("/console/sign-in", data=fields).status_code == 303
    page = http.get(f"/console/teams/{team}")
    assert page.status_code == 200, page.text
    return http, hidden(page.text, "csrf_token")


async def test_console_forms_never_error_nor_reveal_a_private_model(stack: EmbeddedStack, teams: Teams) -> None:
    seen: set[int] = set()

    def check(http: httpx.Client, csrf: str, case: tuple[str, dict[str, str], bool]) -> None:
        path, form, with_token = case
        if with_token:
            form = {**form, "csrf_token": csrf}
        response = http.post(path, data=form)
        if _retry_later(response):
            # The documented answer while a dependency is busy (seen once, under the full suite's
            # load): the contract says retry, and the retry must not fail on the server.
            time.sleep(1)
            response = http.post(path, data=form)
        _no_server_error(response, case, seen)
        assert "private model" not in response.text, case
        flashed = http.get(response.headers["location"]) if response.status_code == 303 else response
        _no_server_error(flashed, case)
        assert "private model" not in flashed.text, case

    def check_search(http: httpx.Client, q: str) -> None:
        for path in ("/console/search", "/console/search/results"):
            response = http.get(path, params={"q": q})
            _no_server_error(response, q)
            assert not re.search(rf"{teams.secret_team}/|private model", response.text), q
        # The model page splices ?version= into the read it makes: it must stay on this model.
        page = http.get(f"/console/models/{teams.reader}/public", params={"version": q})
        _no_server_error(page, q)
        assert not re.search(rf"{teams.secret_team}/|private model", page.text), q

    def check_sign_in(http: httpx.Client, fields: dict[str, str]) -> None:
        response = http.post("/console/sign-in", data=fields)
        _no_server_error(response, fields)
        assert response.status_code != 303 or fields.get("api_key") == teams.reader_key, fields

    def fuzz() -> None:
        http, csrf = _signed_in(stack, teams.reader, teams.reader_key)
        try:
            shapes = ("versions/1.0.0/approval", "versions/1.0.0/lifecycle", "aliases")
            own = st.sampled_from([f"/console/models/{teams.reader}/public/{shape}" for shape in shapes])
            # One form every action takes as it is, with its token (it acts) or without (refused
            # with 403): both outcomes are asserted below. Then anything at all.
            whole = {"decision": "pending", "state": "active", "alias": "fuzzed", "version": "1.0.0"}
            cases = st.one_of(
                st.tuples(own, st.just(whole), st.booleans()), st.tuples(_console_paths(teams), _FORM, st.booleans())
            )
            _fuzz(EXAMPLES, cases, lambda case: check(http, csrf, case))
            _fuzz(EXAMPLES // 2, _search_terms(teams), lambda q: check_search(http, q))
        finally:
            http.close()
        with httpx.Client(base_url=stack.url("query"), follow_redirects=False, timeout=15) as anonymous:
            sign_in = st.dictionaries(st.sampled_from(["sign_in_token", "next", "api_key"]), _FORM_VALUE, max_size=3)
            _fuzz(EXAMPLES // 2, sign_in, lambda fields: check_sign_in(anonymous, fields))

    await asyncio.to_thread(fuzz)
    assert 303 in seen and 403 in seen, seen  # some forms were acted on, some refused for their token


async def test_a_console_form_with_an_idempotency_key_no_page_made_is_refused(
    stack: EmbeddedStack, teams: Teams
) -> None:
    # A key that cannot be a header value (non-ASCII, control characters) must be refused, not fail
    # the in-process call with a 500.
    def post() -> httpx.Response:
        http, csrf = _signed_in(stack, teams.reader, teams.reader_key)
        try:
            path = f"/console/models/{teams.reader}/public/versions/1.0.0/lifecycle"
            return http.post(path, data={"csrf_token": csrf, "state": "deprecated", "idempotency_key": "ë\x07"})
        finally:
            http.close()

    response = await asyncio.to_thread(post)
    assert response.status_code == 422 and "idempotency key" in response.text, response.text[:300]
