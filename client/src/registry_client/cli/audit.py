"""``registry audit export`` and ``registry audit check``: a team's audit entries as NDJSON, checked offline.

The check is the contract's (:func:`registry_contract.audit_chain.check_entries`): anyone with
an export and the audit service's public keys can check it, without the registry.
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
    verify, note = _signature_check(public_key or [])
    verdict = check_entries(entries, verify).model_dump(mode="json", exclude_none=True)
    if note:
        verdict["signatures"] = note
    typer.echo(json.dumps(verdict, indent=2))
    if not verdict["ok"]:
        raise typer.Exit(1)


def _signature_check(public_keys: list[str]) -> tuple[SignatureCheck | None, str | None]:
    """The verifier of ``public_keys``, or none and why signatures go unchecked."""
    if not public_keys:
        return None, "not checked: give the audit service's public keys with --public-key"
    try:
        from registry_client.audit_keys import signature_check
    except ImportError:
        return None, f"not checked: verifying Ed25519 signatures needs the audit extra: {INSTALL_AUDIT}"
    try:
        return signature_check(public_keys), None
    except ValueError as exc:
        raise typer.BadParameter(
            f"not a raw Ed25519 public key (64 hex digits): {exc}", param_hint="--public-key"
        ) from None
