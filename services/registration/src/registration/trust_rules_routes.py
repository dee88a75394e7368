"""Trust-rule management for a team (``team:admin``): create, list, delete.

A rule names an issuer on the platform's list and grants at most the scopes of the admin who
writes it, never ``platform:admin``; each change is an event the audit log keeps for ever.
"""

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from registration.config import RegistrationSettings, settings_of
from registration.trust_rules import TrustRules, public
from registry_contract.auth import Principal
from registry_contract.trust_rules import TrustRuleCreate, TrustRuleList, TrustRulePublic
from shared.chassis.http_auth import administers_team
from shared.chassis.http_params import IdPath, SlugPath
from shared.chassis.problems import Problem, documented, keyed_route_refusals
from shared.outbox.changes import AlreadyAnnounced


async def _rules(request: Request) -> TrustRules:
    rules: TrustRules = request.app.state.trust_rules
    return rules


TeamAdmin = Annotated[Principal, Depends(administers_team("trust rules"))]
Rules = Annotated[TrustRules, Depends(_rules)]
Settings = Annotated[RegistrationSettings, Depends(settings_of)]
router = APIRouter(
    prefix="/v1/teams/{team}/trust-rules",
    tags=["trust-rules"],
    responses=keyed_route_refusals("invalid"),
)


def _refusal(body: TrustRuleCreate, caller: Principal, settings: RegistrationSettings) -> str | None:
    """Why ``caller`` may not write ``body``, if it may not."""
    if body.issuer not in settings.oidc_issuers:
        listed = ", ".join(settings.oidc_issuers) or "none"
        setting = RegistrationSettings.env_name("oidc_issuers")
        return f"issuer {body.issuer!r} is not on the platform's list ({setting}: {listed})"
    identifying = settings.oidc_identifying_claims.get(body.issuer, ["sub"])
    if not set(identifying) & set(body.claims):
        setting = RegistrationSettings.env_name("oidc_identifying_claims")
        return (
            f"a rule for {body.issuer!r} must match at least one of {', '.join(identifying)} ({setting}): "
            "without one, a token of any workload of the issuer would meet it"
        )
    beyond = sorted(scope for scope in set(body.scopes) if not caller.has(scope))
    if beyond:
        return f"a rule grants at most its writer's scopes; this key lacks {', '.join(beyond)}"
    return None


@router.post("", status_code=201, responses=documented("conflict"))
async def create_trust_rule(
    team: SlugPath, body: TrustRuleCreate, caller: TeamAdmin, rules: Rules, settings: Settings, response: Response
) -> TrustRulePublic:
    """Create a rule: tokens of its issuer carrying its claims act for the team with its scopes."""
    refusal = _refusal(body, caller, settings)
    if refusal:
        raise Problem("invalid", refusal)
    quota = settings.max_trust_rules_per_team
    if await rules.count(team) >= quota:
        # Every rule of an issuer is tried on each of its tokens: a team must not add them without end.
        setting = RegistrationSettings.env_name("max_trust_rules_per_team")
        raise Problem("conflict", f"team {team!r} already has {quota} trust rules, the most {setting} allows")
    record = await rules.create(team, body, actor=caller)
    response.headers["Location"] = f"/v1/teams/{team}/trust-rules/{record['_id']}"
    return public(record)


@router.get("")
async def list_trust_rules(team: SlugPath, caller: TeamAdmin, rules: Rules) -> TrustRuleList:
    """The team's rules, oldest first."""
    return TrustRuleList(items=[public(record) for record in await rules.of_team(team)])


@router.delete("/{rule_id}", status_code=204, responses=documented("not_found"))
async def delete_trust_rule(team: SlugPath, rule_id: IdPath, caller: TeamAdmin, rules: Rules, request: Request) -> None:
    """Delete a rule: this service refuses its tokens at once, the others as its event arrives."""
    record = await rules.live(team, rule_id)
    if record is None:
        raise Problem("not_found", f"team {team!r} has no trust rule {rule_id!r}")
    with contextlib.suppress(AlreadyAnnounced):  # deleted by a request running beside this one
        await rules.delete(record, actor=caller)
    request.app.state.federation.forget(rule_id)
