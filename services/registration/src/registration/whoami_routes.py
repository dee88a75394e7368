"""``GET /v1/whoami``: who the registry takes the caller for (a key, or a token and the rule that admitted it)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from registry_contract.auth import Principal
from shared.chassis.http_auth import authenticated
from shared.chassis.problems import documented


class TokenIdentity(BaseModel):
    """For a caller that presented an OpenID Connect token: who it names, and the rule that admitted it."""

    issuer: str
    subject: str
    rule_id: str = Field(description="the trust rule (or platform sign-in rule) that admitted the token")
    claims: dict[str, str] = Field(description="the claims the rule matched on")


class WhoAmI(BaseModel):
    """The caller as every route sees it."""

    key_id: str = Field(description="the key's id; for a token, the id of the rule that admitted it")
    team: str
    scopes: list[str]
    platform_admin: bool
    token: TokenIdentity | None = None


# No scope is needed: any valid key or admitted token may ask (401 without one, 429 over the rate).
router = APIRouter(
    prefix="/v1", tags=["api-keys"], responses=documented("unauthenticated", "rate_limited", "unavailable")
)


@router.get("/whoami")
async def whoami(caller: Annotated[Principal, Depends(authenticated)]) -> WhoAmI:
    """The principal of the presented key or token: what a pipeline checks before it acts."""
    identity = caller.identity
    return WhoAmI(
        key_id=caller.key_id,
        team=caller.team,
        scopes=sorted(caller.scopes),
        platform_admin=caller.is_platform_admin,
        token=TokenIdentity(
            issuer=identity.issuer, subject=identity.subject, rule_id=identity.rule_id, claims=dict(identity.claims)
        )
        if identity
        else None,
    )
