"""``registry trust-rules …``: which OpenID Connect tokens act for a team, through the registration service."""

from __future__ import annotations

from typing import Annotated

import typer

from registry_client.cli.output import ApiKey, AsJson, fields, print_json, registry, table
from registry_contract.trust_rules import RULE_SCOPES

trust_rules_app = typer.Typer(
    help="Create, list and delete a team's trust rules: OpenID Connect tokens (a CI job's) whose claims match act"
    " for the team with the rule's scopes, without a stored key (a team:admin or platform:admin key).",
    no_args_is_help=True,
)
Team = Annotated[str, typer.Argument(help="The team the rule's tokens act for")]


def parse_claims(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as a mapping (the value may hold ``=``); a malformed or repeated one is a usage error."""
    claims: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name or not value:
            raise typer.BadParameter(
                f"{pair!r} is not NAME=VALUE (e.g. repository=acme/fraud-model)", param_hint="--claim"
            )
        if name in claims:
            raise typer.BadParameter(f"{name!r} is given twice; a rule wants one value per claim", param_hint="--claim")
        claims[name] = value
    return claims


@trust_rules_app.command("create")
def create(
    team: Team,
    issuer: Annotated[
        str, typer.Option(help="The tokens' issuer, as their iss claim says it (one on the platform's OIDC_ISSUERS)")
    ],
    claim: Annotated[
        list[str],
        typer.Option(
            help="Repeatable NAME=VALUE the token must carry (a list claim: contain), e.g. ref=refs/heads/main"
        ),
    ],
    scope: Annotated[list[str], typer.Option(help=f"Repeatable: {', '.join(RULE_SCOPES)}")],
    description: Annotated[str | None, typer.Option(help="A label for the rule")] = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
) -> None:
    """Let tokens of ISSUER carrying every --claim act for TEAM with the --scope scopes; the audit log records it."""
    claims = parse_claims(claim)
    unknown = sorted(set(scope) - set(RULE_SCOPES))
    if unknown:
        raise typer.BadParameter(f"unknown scopes {unknown}; use {', '.join(RULE_SCOPES)}", param_hint="--scope")
    with registry(api_key) as client:
        rule = client.create_trust_rule(team, issuer=issuer, claims=claims, scopes=scope, description=description)
    if as_json:
        print_json(rule)
        return
    fields(
        f"trust rule {rule.rule_id}",
        {
            "team": rule.team,
            "issuer": rule.issuer,
            "claims": rule.claims,
            "scopes": rule.scopes,
            "description": rule.description,
            "created": rule.created_at,
            "created by": rule.created_by,
        },
    )


@trust_rules_app.command("list")
def list_rules(team: Team, as_json: AsJson = False, api_key: ApiKey = None) -> None:
    """A team's trust rules, oldest first."""
    with registry(api_key) as client:
        rules = client.list_trust_rules(team).items
    if as_json:
        print_json(rules)
        return
    rows = [(r.rule_id, r.issuer, r.claims, r.scopes, r.created_at) for r in rules]
    table(f"{team} trust rules", ["id", "issuer", "claims", "scopes", "created"], rows)


@trust_rules_app.command("delete")
def delete(
    team: Team,
    rule_id: Annotated[str, typer.Argument(help="The rule's id, as `registry trust-rules list` shows it")],
    api_key: ApiKey = None,
) -> None:
    """Delete a rule: tokens that only it matched stop acting for the team."""
    with registry(api_key) as client:
        client.delete_trust_rule(team, rule_id)
    typer.echo(f"deleted {rule_id}")
