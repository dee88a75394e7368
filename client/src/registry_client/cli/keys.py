"""``registry keys …``: create, list and revoke API keys through the registration service, which owns keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from registry_client.cli.output import ApiKey, print_json, registry
from registry_contract.auth import SCOPES

keys_app = typer.Typer(
    help="Create, list and revoke API keys through the registration service (a team:admin or platform:admin key).",
    no_args_is_help=True,
)


@keys_app.command("create")
def create(
    team: Annotated[str, typer.Option(help="The key's team")],
    scope: Annotated[list[str], typer.Option(help=f"Repeatable: {', '.join(SCOPES)}")],
    name: Annotated[str, typer.Option(help="A label for the key")] = "cli",
    expires_at: Annotated[datetime | None, typer.Option(help="Optional expiry (ISO 8601)")] = None,
    api_key: ApiKey = None,
) -> None:
    """Create a key and print it as JSON (the token is shown this once); the audit log records who made it."""
    unknown = sorted(set(scope) - set(SCOPES))
    if unknown:
        raise typer.BadParameter(f"unknown scopes {unknown}; use {', '.join(SCOPES)}")
    expiry = expires_at.replace(tzinfo=expires_at.tzinfo or UTC) if expires_at else None
    with registry(api_key) as client:
        created = client.create_api_key(team, name, scope, expires_at=expiry)
    print_json(created)


@keys_app.command("list")
def list_keys(team: Annotated[str, typer.Option()], api_key: ApiKey = None) -> None:
    """List a team's keys as JSON (no secrets)."""
    with registry(api_key) as client:
        keys = client.list_api_keys(team)
    print_json(keys.items)


@keys_app.command("revoke")
def revoke(key_id: str, team: Annotated[str, typer.Option(help="The key's team")], api_key: ApiKey = None) -> None:
    """Revoke a key; services refuse it within their key cache time (5 s by default)."""
    with registry(api_key) as client:
        client.revoke_api_key(team, key_id)
    typer.echo(f"revoked {key_id}")
