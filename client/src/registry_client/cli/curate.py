"""Write commands over the Python client: aliases (scope models:write) and approvals (scope models:approve)."""

from __future__ import annotations

from typing import Annotated

import typer

from registry_client.cli.output import ApiKey, AsJson, fields, print_json, registry
from registry_client.cli.terminal import visible
from registry_client.writes import ApprovalStatus
from registry_contract.views import ModelVersionPublic

aliases_app = typer.Typer(help="Point a model's aliases at versions (scope models:write).", no_args_is_help=True)
Comment = Annotated[str | None, typer.Option(help="Why; kept on the version's approval and in the audit log")]


@aliases_app.command("set")
def set_alias(team: str, name: str, alias: str, version: str, as_json: AsJson = False, api_key: ApiKey = None) -> None:
    """Point ALIAS at VERSION (it moves if it pointed elsewhere)."""
    with registry(api_key) as client:
        moved = client.set_alias(team, name, alias, version)
    if as_json:
        print_json(moved)
        return
    was = f" (was {moved.previous_version})" if moved.previous_version else ""
    typer.echo(visible(f"{team}/{name} @{moved.alias} -> {moved.version}{was}", lines=False))


@aliases_app.command("rm")
def remove_alias(team: str, name: str, alias: str, api_key: ApiKey = None) -> None:
    """Remove ALIAS (the version stays)."""
    with registry(api_key) as client:
        client.remove_alias(team, name, alias)
    typer.echo(f"{team}/{name} @{alias} removed")


def approve(
    team: str, name: str, version: str, comment: Comment = None, as_json: AsJson = False, api_key: ApiKey = None
) -> None:
    """Approve a version: environments that require approval accept it."""
    _decide(team, name, version, "approved", comment, as_json=as_json, api_key=api_key)


def reject(
    team: str, name: str, version: str, comment: Comment = None, as_json: AsJson = False, api_key: ApiKey = None
) -> None:
    """Reject a version: environments that require approval refuse it."""
    _decide(team, name, version, "rejected", comment, as_json=as_json, api_key=api_key)


def _decide(
    team: str,
    name: str,
    version: str,
    status: ApprovalStatus,
    comment: str | None,
    *,
    as_json: bool,
    api_key: str | None,
) -> None:
    with registry(api_key) as client:
        decided: ModelVersionPublic = client.set_approval(team, name, version, status, comment=comment)
    if as_json:
        print_json(decided)
        return
    approval = decided.approval
    fields(
        f"{team}/{name} {decided.version}",
        {"approval": approval.status, "by": approval.by, "at": approval.at, "comment": approval.comment},
    )
