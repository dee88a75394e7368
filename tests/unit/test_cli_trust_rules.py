"""``registry trust-rules``: its arguments, the requests it sends, what it prints, and a pipeline's token credential."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from registry_client import AsyncRegistryClient, RegistryClient
from registry_client.cli import output
from registry_client.cli.main import app
from registry_contract.trust_rules import TrustRuleList
from tests.client_fakes import KEY, QUICK, Recorder, problem

pytestmark = pytest.mark.unit

ISSUER = "https://token.actions.githubusercontent.com"
# A GitHub Actions OIDC token's shape: header.payload.signature, each base64url without padding.
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6IjEifQ"
    ".eyJpc3MiOiJodHRwczovL3Rva2VuLmFjdGlvbnMuZ2l0aHVidXNlcmNvbnRlbnQuY29tIiwicmVwb3NpdG9yeSI6ImFjbWUvZnJhdWQifQ"
    ".c2lnbmF0dXJlLV9vZl90aGVfaXNzdWVy"
)
CLAIMS = {"repository": "acme/fraud-model", "ref": "refs/heads/main"}
# Whatever the machine running the tests has set must not reach the commands.
CLIENT_ENV = ("REGISTRY_API_KEY", "REGISTRY_TEAM", "REGISTRY_GATEWAY_URL", "REGISTRY_REGISTRATION_URL")


def rule_json(rule_id: str = "tr_1", **fields: Any) -> dict[str, Any]:
    return {
        "rule_id": rule_id,
        "team": "fraud",
        "issuer": ISSUER,
        "claims": CLAIMS,
        "scopes": ["models:write"],
        "created_at": "2026-11-26T10:00:00Z",
        "created_by": "key_admin01",
        **fields,
    }


def run(
    monkeypatch: pytest.MonkeyPatch, answer: httpx.Response, *args: str, env: dict[str, str] | None = None
) -> tuple[Result, Recorder]:
    """``registry trust-rules ARGS`` against a fake registration service answering ``answer``, and what it got."""
    recorder = Recorder(answer)
    fake = partial(RegistryClient, transport=httpx.MockTransport(recorder), retry=QUICK)
    monkeypatch.setattr(output, "RegistryClient", fake)
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(
        app, ["trust-rules", *args], env={"REGISTRY_API_KEY": KEY, **(env or {})}, terminal_width=200
    )
    return result, recorder


def create_args(*extra: str) -> list[str]:
    claims = [f"--claim={name}={value}" for name, value in CLAIMS.items()]
    return ["create", "fraud", "--issuer", ISSUER, *claims, "--scope", "models:write", *extra]


class TestCreatingARule:
    def test_the_issuer_claims_scopes_and_description_make_the_body(self, monkeypatch: pytest.MonkeyPatch) -> None:
        answer = httpx.Response(201, json=rule_json(description="main branch"))
        args = create_args("--scope", "models:read", "--description", "main branch", "--json")
        result, recorder = run(monkeypatch, answer, *args)
        assert result.exit_code == 0, result.output
        [request] = recorder.requests
        assert (request.method, request.url.path) == ("POST", "/v1/teams/fraud/trust-rules")
        assert json.loads(request.content) == {
            "issuer": ISSUER,
            "claims": CLAIMS,
            "scopes": ["models:write", "models:read"],
            "description": "main branch",
        }
        assert json.loads(result.stdout)["rule_id"] == "tr_1"

    def test_without_a_description_the_body_leaves_it_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        result, recorder = run(monkeypatch, httpx.Response(201, json=rule_json()), *create_args())
        assert result.exit_code == 0, result.output
        assert "description" not in json.loads(recorder.requests[0].content)

    def test_a_claims_value_may_hold_an_equals_sign(self, monkeypatch: pytest.MonkeyPatch) -> None:
        args = ["create", "fraud", "--issuer", ISSUER, "--claim", "sub=repo:acme/x:env=prod", "--scope", "models:read"]
        result, recorder = run(monkeypatch, httpx.Response(201, json=rule_json()), *args)
        assert result.exit_code == 0, result.output
        assert json.loads(recorder.requests[0].content)["claims"] == {"sub": "repo:acme/x:env=prod"}

    def test_without_json_it_prints_the_rule_as_fields(self, monkeypatch: pytest.MonkeyPatch) -> None:
        result, _ = run(monkeypatch, httpx.Response(201, json=rule_json()), *create_args())
        assert result.exit_code == 0, result.output
        assert "trust rule tr_1" in result.stdout
        assert "repository=acme/fraud-model, ref=refs/heads/main" in result.stdout

    @pytest.mark.parametrize("claim", ["repository", "=acme/fraud-model", "repository="])
    def test_a_claim_that_is_not_name_equals_value_is_a_usage_error_before_any_request(
        self, monkeypatch: pytest.MonkeyPatch, claim: str
    ) -> None:
        args = ["create", "fraud", "--issuer", ISSUER, "--claim", claim, "--scope", "models:read"]
        result, recorder = run(monkeypatch, httpx.Response(201, json=rule_json()), *args)
        assert result.exit_code == 2
        assert "Invalid value for --claim" in result.output and "is not NAME=VALUE" in result.output
        assert recorder.requests == []

    def test_a_claim_given_twice_is_a_usage_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        result, recorder = run(monkeypatch, httpx.Response(201, json=rule_json()), *create_args("--claim", "ref=x"))
        assert result.exit_code == 2 and "'ref' is given twice" in result.output
        assert recorder.requests == []

    @pytest.mark.parametrize("scope", ["platform:admin", "models:delete"])
    def test_a_scope_a_rule_cannot_grant_is_a_usage_error(self, monkeypatch: pytest.MonkeyPatch, scope: str) -> None:
        args = ["create", "fraud", "--issuer", ISSUER, "--claim", "ref=main", "--scope", scope]
        result, recorder = run(monkeypatch, httpx.Response(201, json=rule_json()), *args)
        assert result.exit_code == 2 and "unknown scopes" in result.output
        assert recorder.requests == []

    @pytest.mark.parametrize("missing", ["--issuer", "--claim", "--scope"])
    def test_issuer_claim_and_scope_are_required(self, monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
        given = {"--issuer": ISSUER, "--claim": "ref=main", "--scope": "models:read"}
        args = [part for option, value in given.items() if option != missing for part in (option, value)]
        result, recorder = run(monkeypatch, httpx.Response(201, json=rule_json()), "create", "fraud", *args)
        assert result.exit_code == 2 and f"Missing option '{missing}'" in result.output
        assert recorder.requests == []

    def test_a_refusal_prints_the_problem_and_exits_4(self, monkeypatch: pytest.MonkeyPatch) -> None:
        answer = problem(403, "forbidden", "needs team:admin of fraud")
        result, _ = run(monkeypatch, answer, *create_args())
        assert result.exit_code == 4
        assert "error: needs team:admin of fraud (403, forbidden)" in result.output


class TestListingRules:
    def test_the_rules_print_as_a_table_with_claims_as_name_equals_value(self, monkeypatch: pytest.MonkeyPatch) -> None:
        rules = [rule_json("tr_1"), rule_json("tr_2", claims={"sub": "repo:acme/x"}, scopes=["models:read", "x:y"])]
        result, recorder = run(monkeypatch, httpx.Response(200, json={"items": rules}), "list", "fraud")
        assert result.exit_code == 0, result.output
        [request] = recorder.requests
        assert (request.method, request.url.path) == ("GET", "/v1/teams/fraud/trust-rules")
        lines = result.stdout.splitlines()
        assert "fraud trust rules" in lines[0]
        header = next(line for line in lines if "issuer" in line)
        assert [word for word in header.replace("┃", " ").split()] == ["id", "issuer", "claims", "scopes", "created"]
        first = next(line for line in lines if "tr_1" in line)
        assert ISSUER in first and "repository=acme/fraud-model, ref=refs/heads/main" in first
        assert "models:write" in first and "2026-11-26 10:00:00" in first
        second = next(line for line in lines if "tr_2" in line)
        assert "sub=repo:acme/x" in second and "models:read, x:y" in second

    def test_json_prints_the_rules_as_an_array(self, monkeypatch: pytest.MonkeyPatch) -> None:
        answer = httpx.Response(200, json={"items": [rule_json()]})
        result, _ = run(monkeypatch, answer, "list", "fraud", "--json")
        assert result.exit_code == 0, result.output
        [printed] = json.loads(result.stdout)
        assert (printed["rule_id"], printed["claims"]) == ("tr_1", CLAIMS)


class TestDeletingARule:
    def test_it_deletes_the_rule_of_the_team(self, monkeypatch: pytest.MonkeyPatch) -> None:
        result, recorder = run(monkeypatch, httpx.Response(204), "delete", "fraud", "tr_1")
        assert result.exit_code == 0, result.output
        [request] = recorder.requests
        assert (request.method, request.url.path) == ("DELETE", "/v1/teams/fraud/trust-rules/tr_1")
        assert result.stdout == "deleted tr_1\n"

    def test_an_unknown_rule_exits_3(self, monkeypatch: pytest.MonkeyPatch) -> None:
        result, _ = run(monkeypatch, problem(404, "not_found", "no such trust rule"), "delete", "fraud", "tr_x")
        assert result.exit_code == 3 and "no such trust rule" in result.output


class TestATokenAsTheCredential:
    def test_a_jwt_is_sent_as_the_bearer_unchanged(self, monkeypatch: pytest.MonkeyPatch) -> None:
        answer = httpx.Response(200, json={"items": []})
        result, recorder = run(monkeypatch, answer, "list", "fraud", env={"REGISTRY_API_KEY": JWT})
        assert result.exit_code == 0, result.output
        [request] = recorder.requests
        assert request.headers["Authorization"] == f"Bearer {JWT}"
        assert "X-Registry-Team" not in request.headers

    def test_registry_team_becomes_the_team_header_of_every_request(self, monkeypatch: pytest.MonkeyPatch) -> None:
        env = {"REGISTRY_API_KEY": JWT, "REGISTRY_TEAM": "fraud"}
        result, recorder = run(monkeypatch, httpx.Response(201, json=rule_json()), *create_args(), env=env)
        assert result.exit_code == 0, result.output
        assert recorder.requests[0].headers["X-Registry-Team"] == "fraud"

    def test_the_clients_team_argument_wins_over_registry_team(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REGISTRY_TEAM", "fraud")
        recorder = Recorder(httpx.Response(204))
        with RegistryClient(JWT, team="risk", transport=httpx.MockTransport(recorder)) as client:
            client.delete_trust_rule("risk", "tr_1")
        assert recorder.requests[0].headers["X-Registry-Team"] == "risk"

    async def test_the_async_client_has_the_same_calls(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REGISTRY_TEAM", "fraud")
        recorder = Recorder(httpx.Response(200, json={"items": [rule_json()]}))
        async with AsyncRegistryClient(JWT, transport=httpx.MockTransport(recorder)) as client:
            rules = await client.list_trust_rules("fraud")
        assert isinstance(rules, TrustRuleList) and rules.items[0].claims == CLAIMS
        assert recorder.requests[0].headers["Authorization"] == f"Bearer {JWT}"
        assert recorder.requests[0].headers["X-Registry-Team"] == "fraud"
