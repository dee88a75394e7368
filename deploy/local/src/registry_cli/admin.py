"""``registry keys …`` (through the registration service, which owns keys) and ``registry audit verify``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from audit.chain import ChainKey, Verdict, Verifier, verify
from audit.config import AuditSettings
from audit.signing import KeyRing, PublicKey, SigningKey
from registry_cli.output import ApiKey, print_json, registry
from registry_cli.secrets import load_or_create
from registry_contract.auth import SCOPES
from shared.chassis.mongo import make_client
from shared.chassis.settings import CommonSettings

keys_app = typer.Typer(
    help="Create, list and revoke API keys through the registration service (a team:admin or platform:admin key).",
    no_args_is_help=True,
)
audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)

# The audit log's database: its own server in the embedded stack; the shared one elsewhere.
AuditMongoUri = Annotated[
    str,
    typer.Option("--mongodb-uri", envvar=["AUDIT_MONGODB_URI", "MONGODB_URI"], help="MongoDB holding the audit log"),
]
DEFAULT_AUDIT_URI = "mongodb://127.0.0.1:27018/?retryWrites=false&directConnection=true"
# The audit service's own database (the audit log lives nowhere else).
AuditDatabase = Annotated[
    str, typer.Option("--database", envvar="AUDIT_MONGODB_DATABASE", help="The audit service's database")
]


def _settings(uri: str) -> CommonSettings:
    return CommonSettings(service_name="registry-cli", mongodb_uri=uri)


async def _with_db(uri: str, database: str, action: Any) -> Any:
    client = make_client(_settings(uri))
    try:
        return await action(client[database])
    finally:
        await client.close()


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


@audit_app.command("verify")
def verify_audit(
    mongodb_uri: AuditMongoUri = DEFAULT_AUDIT_URI,
    database: AuditDatabase = AuditSettings.model_fields["mongodb_database"].default,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            help="An audit public key (64 hex digits, as GET /v1/audit/public-keys lists it); repeat for retired "
            "keys (default: the local stack's)"
        ),
    ] = None,
    chain_key: Annotated[
        str | None,
        typer.Option(
            envvar="AUDIT_CHAIN_KEY",
            help="The legacy chain key, to check entries written before signed chains (default: the local stack's)",
        ),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Local stack whose public key to use when none is given")] = Path(
        ".data"
    ),
    full: Annotated[
        bool, typer.Option(help="Walk every chain from the start, not from the last verified point")
    ] = True,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 also when legacy entries' contents could not be checked (no chain key)")
    ] = False,
) -> None:
    """Check every audit chain with the audit service's public key (no secret); exit 1 at the first broken link.

    Read-only: it holds nothing that could sign, so it moves no checkpoint. Without the legacy
    chain key, entries written before signed chains are checked by their links and the signed
    migration point only (``legacy_unchecked`` counts them): a warning on stderr says how many,
    and ``--strict`` makes that exit 1.
    """
    local = load_or_create(data_dir) if (data_dir / "secrets.json").exists() else None
    if not public_key:
        if local is None:
            raise typer.BadParameter("give --public-key (GET /v1/audit/public-keys), or run from the stack's directory")
        public_key = [SigningKey.parse(local.audit_signing_key).public.raw.hex()]
    if chain_key is None and local is not None:
        chain_key = local.audit_chain_key
    verifier = Verifier(
        KeyRing([PublicKey.parse(text) for text in public_key]),
        legacy=ChainKey(chain_key.encode()) if chain_key else None,
    )

    async def action(db: Any) -> Verdict:
        return await verify(db, verifier, full=full)

    verdict = asyncio.run(_with_db(mongodb_uri, database, action))
    typer.echo(json.dumps(verdict.public(), indent=2))
    warning = unchecked_warning(verdict)
    if warning:
        typer.echo(warning, err=True)
    if not verdict.ok or (strict and verdict.legacy_unchecked):
        raise typer.Exit(1)


def unchecked_warning(verdict: Verdict) -> str | None:
    """What ``registry audit verify`` warns of when legacy entries' contents went unchecked; ``None``: nothing."""
    if not verdict.legacy_unchecked:
        return None
    return (
        f"warning: the contents of {verdict.legacy_unchecked} legacy audit entries (written before signed chains) "
        "were NOT checked, only their links and the signed migration point: give --chain-key (AUDIT_CHAIN_KEY) "
        "to check them; --strict fails on this"
    )
