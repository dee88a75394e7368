"""What the audit log keeps of a token's caller and of a refused token: rule, issuer, subject, reason."""

from __future__ import annotations

import pytest

from audit.entries import Source, entry_for, received_now
from registry_contract import messages
from registry_contract.auth import FederatedIdentity, Principal
from registry_contract.envelope import CloudEvent

pytestmark = pytest.mark.unit

ISSUER = "https://token.actions.githubusercontent.com"


def access_entry(event_type: str, **data: object) -> dict[str, object]:
    fields = {"principal": None, "team": None, "method": "POST", "path": "/v1/models/fraud/m/versions", "status": 201}
    event = CloudEvent(source="/registry/registration", type=event_type, data=fields | data)
    source = Source.of("registry.access", 0, 3, b"fraud", b"{}", [])
    return entry_for(source, event=event, error=None, received_at=received_now(), signed=True)


def test_a_token_callers_access_names_its_rule_issuer_subject_and_matched_claims() -> None:
    identity = FederatedIdentity(
        issuer=ISSUER,
        subject="repo:acme/fraud:ref:refs/heads/main",
        rule_id="Rule0001",
        claims=(("repository", "acme/fraud"),),
    )
    principal = Principal(key_id="Rule0001", team="fraud", identity=identity)
    entry = access_entry(messages.ACCESS_WRITE, principal="Rule0001", team="fraud", identity=identity.as_record())
    assert entry["detail"] == (
        f"POST /v1/models/fraud/m/versions 201 by token rule=Rule0001 iss={ISSUER} "
        "sub=repo:acme/fraud:ref:refs/heads/main matched [repository=acme/fraud]"
    )
    assert principal.limit_key.startswith("Rule0001/")  # one bucket per rule and subject


def test_a_long_subject_never_pushes_the_rule_out_of_the_detail() -> None:
    identity = {"issuer": ISSUER, "subject": "x" * 5000, "rule": "Rule0001", "claims": {"repository": "acme/fraud"}}
    detail = str(access_entry(messages.ACCESS_WRITE, principal="Rule0001", identity=identity)["detail"])
    assert "rule=Rule0001" in detail and len(detail) <= 500


def test_a_refused_tokens_reason_is_in_its_auth_failed_entry() -> None:
    entry = access_entry(messages.ACCESS_AUTH_FAILED, status=401, reason="token expired")
    assert entry["detail"] == "POST /v1/models/fraud/m/versions 401 (token expired)"
    # A denial's reason stays out of the detail, as before (its own field).
    assert "(" not in str(access_entry(messages.ACCESS_DENIED, status=403, reason="missing scope")["detail"])
