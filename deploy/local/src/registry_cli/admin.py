"""``registry audit verify``: every audit chain checked in the audit service's database, with its public key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from audit.chain import ChainKey, Verdict, Verifier, verify
from audit.config import AuditSettings
from audit.signing import KeyRing, PublicKey, SigningKey
from registry_cli.secrets import load_or_create
from registry_client.cli.audit import NoSignatureCheck, verify_bundle_file
from shared.chassis.mongo import make_client
from shared.chassis.settings import CommonSettings

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


def verify_audit(
    mongodb_uri: AuditMongoUri = DEFAULT_AUDIT_URI,
    database: AuditDatabase = AuditSettings.model_fields["mongodb_database"].default,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            help="An audit public key (64 hex digits, as GET /v1/audit/public-keys lists it; with --bundle also PEM); "
            "repeat for retired keys (default: the local stack's)"
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
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="Check this evidence bundle (`registry audit evidence`) offline instead of the database ('-': stdin)"
        ),
    ] = None,
    no_signature_check: NoSignatureCheck = False,
) -> None:
    """Check every audit chain with the audit service's public key (no secret); exit 1 at the first broken link.

    Read-only: it holds nothing that could sign, so it moves no checkpoint. Without the legacy
    chain key, entries written before signed chains are checked by their links and the signed
    migration point only (``legacy_unchecked`` counts them): a warning on stderr says how many,
    and ``--strict`` makes that exit 1. With ``--bundle FILE`` it checks an evidence bundle
    offline instead, as the client's ``registry audit verify --bundle`` does (--public-key: the
    keys to check its signatures with, hex or PEM, by default the local stack's; exit 0 valid,
    1 broken, 2 not a bundle or no key to check its signatures with; --no-signature-check checks
    all but the signatures).
    """
    local = load_or_create(data_dir) if (data_dir / "secrets.json").exists() else None
    if bundle is not None:
        if not public_key and not no_signature_check and local is not None:
            public_key = [SigningKey.parse(local.audit_signing_key).public.raw.hex()]
        verify_bundle_file(bundle, public_key, no_signature_check=no_signature_check)
        return
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
