"""``registry audit export``, ``check``, ``evidence`` and ``verify --bundle``: audit evidence, checked offline.

The checks are the contract's (:func:`registry_contract.audit_chain.check_entries`,
:func:`registry_contract.evidence_check.verify_bundle`): anyone with an export or an evidence
bundle and the audit service's public keys can check it, without the registry.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from registry_client.audit import AuditFilters
from registry_client.cli.output import ApiKey, registry
from registry_client.cli.terminal import json_text
from registry_contract.audit_chain import SignatureCheck, check_entries
from registry_contract.audit_views import AuditEntryPublic
from registry_contract.evidence_check import verify_bundle

_PAGE = 200  # the audit service's largest page
INSTALL_AUDIT = "pip install 'registry-client[audit]'"


def export_audit(
    team: Annotated[str | None, typer.Option(help="Whose log (default the key's; others: platform admins)")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only entries received at or after this time")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many entries (default all)")] = None,
    api_key: ApiKey = None,
) -> None:
    """A team's audit entries as NDJSON on stdout (scope audit:read), newest first: check them with `audit check`."""
    filters: AuditFilters = {}
    if team:
        filters["team"] = team
    if since:
        filters["since"] = since
    with registry(api_key) as client:
        entries = client.audit_entries(page_size=min(limit or _PAGE, _PAGE), **filters)
        for entry in islice(entries, limit):
            sys.stdout.write(json_text(entry.model_dump_json()) + "\n")


def check_audit(
    file: Annotated[Path, typer.Argument(help="An export: NDJSON of audit entries ('-': stdin)", allow_dash=True)],
    public_key: Annotated[
        list[str] | None,
        typer.Option(help="Repeatable: a public key (hex) of GET /v1/audit/public-keys that signed entries may use"),
    ] = None,
) -> None:
    """The offline verification of an export (`audit export`): hashes, links and signatures, as JSON; exit 1 if broken.

    Needs no registry: each entry's hash is recomputed, consecutive entries of a chain must link,
    and with --public-key the signed entries' signatures are verified (the `audit` extra:
    pip install 'registry-client[audit]'). Gaps between a team's entries are other teams' entries.
    `registry audit verify` (the local stack's) walks the database instead.
    """
    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    entries: list[AuditEntryPublic] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(AuditEntryPublic.model_validate_json(line))
        except ValidationError as exc:
            typer.echo(f"error: line {number} is not an audit entry: {exc.errors()[0]['msg']}", err=True)
            raise typer.Exit(2) from None
    verify = _signature_check(public_key) if public_key else None
    verdict = check_entries(entries, verify).model_dump(mode="json", exclude_none=True)
    if verify is None:
        verdict["signatures"] = "not checked: give the audit service's public keys with --public-key"
    typer.echo(json.dumps(verdict, indent=2))
    if not verdict["ok"]:
        raise typer.Exit(1)


def evidence(
    team: str,
    name: str,
    version: str,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the bundle to this file (default: stdout)")
    ] = None,
    api_key: ApiKey = None,
) -> None:
    """One version's evidence bundle as JSON (scope audit:read): check it offline with `audit verify --bundle`.

    The bundle holds the version's registration (fields, lineage, provenance), updates, approvals,
    lifecycle changes, alias moves and deployments, as its events' records say, the team's audit
    entries about it and the chain proof the audit service signed.
    """
    with registry(api_key) as client:
        bundle = client.export_evidence(team, name, version)
    text = json_text(bundle.model_dump_json(indent=2)) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    truncated = " (truncated: more entries concern the version)" if bundle.truncated else ""
    typer.echo(f"{len(bundle.entries)} audit entries written to {output}{truncated}", err=True)


NoSignatureCheck = Annotated[
    bool,
    typer.Option(
        "--no-signature-check",
        help="Check hashes, links, records and summary only, leaving the audit service's signatures unchecked "
        "(without it, a bundle whose signatures were not checked exits 2)",
    ),
]


def verify_bundle_file(bundle: Path, public_key: list[str] | None, *, no_signature_check: bool = False) -> None:
    """Check an evidence bundle offline and print the verdict as JSON; exit 1 if it does not verify, 2 if unreadable.

    Signatures are checked with ``public_key``; without one, only ``no_signature_check`` lets the
    bundle pass (a bundle whose signatures nobody checked proves nothing about who made it).
    """
    keys = [_key_text(key) for key in public_key or []]
    if keys and no_signature_check:
        raise typer.BadParameter("give --public-key or --no-signature-check, not both", param_hint="--public-key")
    if not keys and not no_signature_check:
        raise typer.BadParameter(
            "give the audit service's public key (GET /v1/audit/public-keys) to check the bundle's signatures, "
            "or --no-signature-check to check everything else only",
            param_hint="--public-key",
        )
    try:
        document = json.loads(sys.stdin.read() if str(bundle) == "-" else bundle.read_text())
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {bundle} is not a JSON file: {exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(document, dict):
        typer.echo(f"error: {bundle} is not an evidence bundle (not a JSON object)", err=True)
        raise typer.Exit(2)
    verify = _signature_check(keys) if keys else None
    verdict = verify_bundle(document, verify).model_dump(mode="json", exclude_none=True)
    if verify is None:
        verdict["signatures"] = "not checked (--no-signature-check)"
    typer.echo(json.dumps(verdict, indent=2))
    if not verdict["ok"]:
        raise typer.Exit(1)


def verify_audit_bundle(
    bundle: Annotated[
        Path | None,
        typer.Option(
            help="An evidence bundle (`registry audit evidence`) to check offline ('-': stdin)", allow_dash=True
        ),
    ] = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            help="Repeatable: an audit public key (64 hex digits, PEM text, or a PEM file) of GET /v1/audit/public-keys"
        ),
    ] = None,
    no_signature_check: NoSignatureCheck = False,
) -> None:
    """Check an evidence bundle offline (--bundle): hashes, links to signed points, signatures, records, summary.

    Exit 0: it verifies, its signatures checked with --public-key; 1: it does not (the verdict's
    first_broken names the first broken entry, link, signed point, record or the summary); 2: the
    file is not a bundle, a key is not one, no --public-key was given, or checking signatures needs
    the audit extra (pip install 'registry-client[audit]'). --no-signature-check checks all but the
    signatures, and says so in the verdict. With the local stack installed, `registry audit verify`
    without --bundle walks the audit database instead.
    """
    if bundle is None:
        raise typer.BadParameter(
            "give --bundle FILE (walking the audit database takes the local stack: pip install registry-stack)",
            param_hint="--bundle",
        )
    verify_bundle_file(bundle, public_key, no_signature_check=no_signature_check)


def _key_text(value: str) -> str:
    """A public key as text: given inline (hex or PEM), or the PEM file it names."""
    candidate = Path(value)
    if not value.strip().startswith("-----BEGIN") and len(value) < 4096 and candidate.is_file():
        return candidate.read_text()
    return value


def _signature_check(public_keys: list[str]) -> SignatureCheck:
    """The verifier of ``public_keys``; exit 2 when the audit extra that checks them is missing."""
    try:
        from registry_client.audit_keys import signature_check
    except ImportError:
        typer.echo(
            f"error: checking the audit service's Ed25519 signatures needs the audit extra: {INSTALL_AUDIT}", err=True
        )
        raise typer.Exit(2) from None
    try:
        return signature_check(public_keys)
    except ValueError as exc:
        raise typer.BadParameter(
            f"not an Ed25519 public key (64 hex digits or PEM): {exc}", param_hint="--public-key"
        ) from None
