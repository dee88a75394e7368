"""The identity settings refuse what would silently match nothing, or anyone."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from query.config import QuerySettings
from registration.config import RegistrationSettings
from registration.federation import sign_in_rule_id

pytestmark = pytest.mark.unit

ISSUER = "https://idp.example.com"


def registration(**env: object) -> RegistrationSettings:
    return RegistrationSettings(**{name: value for name, value in env.items()})  # type: ignore[arg-type]


def rule(**changes: object) -> dict[str, object]:
    return {"issuer": ISSUER, "claims": {"groups": "fraud-ds"}, "team": "fraud", "scopes": ["models:read"]} | changes


def test_a_sign_in_rule_is_for_a_listed_issuer_never_on_reserved_claims_and_platform_admin_only_for_the_platform() -> (
    None
):
    assert registration(oidc_issuers=[ISSUER], oidc_sign_in_rules=[rule()]).oidc_sign_in_rules[0].team == "fraud"
    refusals = {
        "not on OIDC_ISSUERS": rule(issuer="https://other.example.com"),
        "cannot match on aud": rule(claims={"aud": "model-registry"}),
        "platform:admin is for team 'platform' only": rule(scopes=["platform:admin"]),
    }
    for message, bad in refusals.items():
        with pytest.raises(ValidationError, match=message):
            registration(oidc_issuers=[ISSUER], oidc_sign_in_rules=[bad])


def test_issuers_are_https_or_loopback_and_algorithms_asymmetric() -> None:
    assert registration(oidc_issuers=["http://127.0.0.1:9400", ISSUER]).oidc_issuers
    with pytest.raises(ValidationError, match="https, or http on a loopback host"):
        registration(oidc_issuers=["http://idp.example.com"])
    with pytest.raises(ValidationError, match="HS256"):
        registration(oidc_algorithms=["RS256", "HS256"])


def test_a_sign_in_rules_id_does_not_change_with_its_description() -> None:
    settings = registration(oidc_issuers=[ISSUER], oidc_sign_in_rules=[rule(), rule(description="the fraud team")])
    first, described = settings.oidc_sign_in_rules
    assert sign_in_rule_id(first) == sign_in_rule_id(described)
    assert len(sign_in_rule_id(first)) == 8 and sign_in_rule_id(first).isalnum()


def test_an_empty_console_issuer_is_no_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUERY_CONSOLE_OIDC_ISSUER", "")
    monkeypatch.setenv("QUERY_CONSOLE_OIDC_CLIENT_SECRET", "")
    settings = QuerySettings()
    assert settings.console_oidc_issuer is None and settings.console_oidc_client_secret is None
    monkeypatch.setenv("QUERY_CONSOLE_OIDC_ISSUER", "http://idp.example.com")
    with pytest.raises(ValidationError, match="https, or http on a loopback host"):
        QuerySettings()


def test_the_identifying_claims_default_names_githubs() -> None:
    claims = registration().oidc_identifying_claims
    assert "repository" in claims["https://token.actions.githubusercontent.com"]
    assert json.dumps(claims)  # settable as JSON, as the docs say
