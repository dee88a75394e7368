"""Trust rules: which OpenID Connect tokens act for a team, with which scopes.

A team admin writes a rule naming an issuer on the platform's list (``OIDC_ISSUERS``) and the
claims a token of that issuer must carry, e.g. GitHub Actions' ``repository`` and ``ref``. A token
whose claims match acts for the rule's team with the rule's scopes, without a stored key. A claim
matches when the token's value equals the rule's, or, for a list claim (``groups``), contains it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from registry_contract.auth import SCOPES
from registry_contract.times import UtcTime

MAX_RULE_CLAIMS = 16
# Claims the verifier checks itself (issuer, audience, times) or that are never stable: a rule
# matching on them would say nothing about who the caller is.
RESERVED_CLAIMS = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti", "nonce", "auth_time", "at_hash", "azp"})
RULE_SCOPES = tuple(scope for scope in SCOPES if scope != "platform:admin")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ClaimName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
ClaimValue = Annotated[str, StringConstraints(min_length=1, max_length=256)]
RuleScope = Annotated[str, StringConstraints(pattern="^(" + "|".join(RULE_SCOPES) + ")$")]


class TrustRuleCreate(BaseModel):
    """A rule a team admin writes: tokens of ``issuer`` carrying ``claims`` act for the team with ``scopes``."""

    model_config = ConfigDict(extra="forbid")

    issuer: Annotated[str, StringConstraints(min_length=1, max_length=512)] = Field(
        description="an issuer on the platform's list (OIDC_ISSUERS), exactly as the tokens' iss claim says it"
    )
    claims: dict[ClaimName, ClaimValue] = Field(
        min_length=1,
        max_length=MAX_RULE_CLAIMS,
        description="claims the token must carry, each equal (or, for a list claim, containing) the value; "
        "at least one, and none of iss, aud, exp, nbf, iat, jti, nonce, auth_time, at_hash, azp",
        examples=[{"repository": "acme/fraud-model", "ref": "refs/heads/main"}],
    )
    scopes: list[RuleScope] = Field(
        min_length=1,
        max_length=len(RULE_SCOPES),
        description="what a matching token may do: at most the scopes of the admin writing the rule; "
        "never platform:admin",
    )
    description: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("claims")
    @classmethod
    def _claims_say_who(cls, claims: dict[str, str]) -> dict[str, str]:
        reserved = sorted(RESERVED_CLAIMS & set(claims))
        if reserved:
            raise ValueError(f"a rule cannot match on {', '.join(reserved)}: the verifier checks these itself")
        if any(_CONTROL.search(value) for value in claims.values()):
            raise ValueError("claim values cannot hold control characters")
        return claims

    @field_validator("issuer", "description")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("cannot hold control characters")
        return value


class TrustRulePublic(BaseModel):
    """A trust rule as the team's admins see it."""

    rule_id: str
    team: str
    issuer: str
    claims: dict[str, str]
    scopes: list[str]
    description: str | None = None
    created_at: UtcTime
    created_by: str | None = Field(None, description="the id of the key (or rule) whose caller wrote the rule")


class TrustRuleList(BaseModel):
    """A team's trust rules, oldest first."""

    items: list[TrustRulePublic]


def claims_match(rule_claims: dict[str, str], token_claims: dict[str, Any]) -> bool:
    """Whether ``token_claims`` carry every one of ``rule_claims`` (a list claim carries each of its members)."""
    for name, wanted in rule_claims.items():
        value = token_claims.get(name)
        if isinstance(value, list):
            if wanted not in [item for item in value if isinstance(item, str)]:
                return False
        elif not isinstance(value, str) or value != wanted:
            return False
    return True
