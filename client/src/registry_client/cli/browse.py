"""Read commands over the Python client: models, versions, search, cards, deployments and the audit log."""

from __future__ import annotations

from itertools import islice
from typing import Annotated, cast

import typer
from rich.markdown import Markdown

from registry_client.assistant import SearchFilters
from registry_client.audit import AuditFilters
from registry_client.cli.output import (
    DEFAULT_LIMIT,
    ApiKey,
    AsJson,
    AsOfText,
    Consistency,
    Limit,
    as_of_time,
    fields,
    print_json,
    registry,
    stdout,
    table,
)
from registry_client.cli.terminal import visible
from registry_client.reads import Lifecycle, ModelFilters, VersionFilters
from registry_contract.assistant_views import SearchHitPublic
from registry_contract.views import ModelPublic, ModelVersionPublic

models_app = typer.Typer(help="Browse models (scope models:read).", no_args_is_help=True)
versions_app = typer.Typer(help="Browse a model's versions (scope models:read).", no_args_is_help=True)

Team = Annotated[str | None, typer.Option(help="Only this team's models")]
Framework = Annotated[str | None, typer.Option(help="Only this framework (of the latest version)")]
_PAGE = 200  # the services' largest page


@models_app.command("list")
def list_models(
    team: Team = None,
    framework: Framework = None,
    tag: Annotated[list[str] | None, typer.Option(help="Repeatable key:value tag the model must carry")] = None,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """The models you can read, newest first."""
    filters: ModelFilters = {}
    if team:
        filters["team"] = team
    if framework:
        filters["framework"] = framework
    if tag:
        for pair in tag:
            if ":" not in pair:
                raise typer.BadParameter(f"{pair!r} is not key:value", param_hint="--tag")
        filters["tags"] = tag
    with registry(api_key, consistency) as client:
        found = list(islice(client.models(page_size=min(limit, _PAGE), **filters), limit))
    if as_json:
        print_json(found)
        return
    rows = [(m.team, m.name, m.latest_version, m.version_count, m.framework, m.aliases, m.tags) for m in found]
    table(None, ["team", "name", "latest", "versions", "framework", "aliases", "tags"], rows)


@models_app.command("show")
def show_model(
    team: str,
    name: str,
    as_of: AsOfText = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """One model with its latest version's headline fields (as they stood at --as-of)."""
    moment = as_of_time(as_of)
    with registry(api_key, consistency) as client:
        model = client.get_model(team, name, as_of=moment)
    if as_json:
        print_json(model)
        return
    fields(f"{team}/{name}", _model_fields(model))


@versions_app.command("list")
def list_versions(
    team: str,
    name: str,
    lifecycle: Annotated[str | None, typer.Option(help="active, deprecated or archived")] = None,
    include_prerelease: Annotated[bool, typer.Option(help="Also list prereleases")] = False,
    as_of: AsOfText = None,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """A model's versions, newest SemVer precedence first (as they stood at --as-of)."""
    filters: VersionFilters = {"include_prerelease": include_prerelease}
    if (moment := as_of_time(as_of)) is not None:
        filters["as_of"] = moment
    if lifecycle:
        if lifecycle not in ("active", "deprecated", "archived"):
            raise typer.BadParameter("use active, deprecated or archived", param_hint="--lifecycle")
        filters["lifecycle"] = cast(Lifecycle, lifecycle)
    with registry(api_key, consistency) as client:
        found = list(islice(client.versions(team, name, page_size=min(limit, _PAGE), **filters), limit))
    if as_json:
        print_json(found)
        return
    rows = [(v.version, v.lifecycle, v.status, v.approval.status, v.aliases, v.framework, v.created_at) for v in found]
    table(f"{team}/{name}", ["version", "lifecycle", "status", "approval", "aliases", "framework", "created"], rows)


@versions_app.command("show")
def show_version(
    team: str,
    name: str,
    version: Annotated[str, typer.Argument(help="SemVer, 'latest' or '@alias'")] = "latest",
    as_of: AsOfText = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """One version: by number, the latest active stable one, or through an alias (resolved at --as-of)."""
    moment = as_of_time(as_of)
    with registry(api_key, consistency) as client:
        found = client.get_version(team, name, version, as_of=moment)
    if as_json:
        print_json(found)
        return
    fields(f"{team}/{name} {found.version}", _version_fields(found))


def search(
    query: Annotated[str, typer.Argument(help='Words, "phrases" and field:value terms (framework:xgboost)')],
    team: Team = None,
    framework: Framework = None,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """Ranked search over the models you can read, best first."""
    filters: SearchFilters = {}
    if team:
        filters["team"] = team
    if framework:
        filters["framework"] = framework
    with registry(api_key, consistency) as client:
        hits = list(islice(client.search(query, page_size=min(limit, _PAGE), **filters), limit))
    if as_json:
        print_json(hits)
        return
    rows = [(f"{h.score:.2f}", h.model.team, h.model.name, _latest(h), h.model.description) for h in hits]
    table(None, ["score", "team", "name", "latest", "description"], rows)


def _latest(hit: SearchHitPublic) -> str | None:
    """The latest version with the aliases that name it: ``1.4.0 @champion``."""
    version = hit.latest_version
    if version is None:
        return hit.model.latest_version
    return " ".join([version.version, *(f"@{alias}" for alias in version.aliases)])


def card(
    team: str,
    name: str,
    version: Annotated[str | None, typer.Option(help="Of this version (default the latest)")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the card's markdown source")] = False,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """A model card: rendered for a terminal, as markdown, or as JSON (structured card plus markdown)."""
    with registry(api_key, consistency) as client:
        if markdown and not as_json:
            typer.echo(visible(client.get_card_markdown(team, name, version=version)))
            return
        found = client.get_card(team, name, version=version)
    if as_json:
        print_json(found)
        return
    stdout().print(Markdown(visible(found.markdown)))


def deployments(
    team: str,
    name: str,
    version: str,
    as_of: AsOfText = None,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    consistency: Consistency = None,
) -> None:
    """Where a version stands per environment, and its deployment reports (oldest first); then, with --as-of."""
    moment = as_of_time(as_of)
    with registry(api_key, consistency) as client:
        found = client.get_deployments(team, name, version, limit=min(limit, _PAGE), as_of=moment)
    if as_json:
        print_json(found)
        return
    places = [(env, s.status, s.target, s.occurred_at) for env, s in found.environments.items()]
    table(f"{team}/{name} {version}: {found.status}", ["environment", "status", "target", "since"], places)
    reports = [(r.occurred_at, r.environment, r.status, r.outcome, r.reason or r.message) for r in found.items]
    table("reports", ["occurred", "environment", "status", "outcome", "reason"], reports)


def list_audit(
    team: Annotated[str | None, typer.Option(help="Whose log (default the key's; others: platform admins)")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="A CloudEvents type, or 'undecodable'")] = None,
    model: Annotated[str | None, typer.Option(help="One model: team/name")] = None,
    correlation_id: Annotated[
        str | None, typer.Option(help="One operation: a command and its outcome share it (registry produce prints it)")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    api_key: ApiKey = None,
) -> None:
    """Audit entries over HTTP, newest first (scope audit:read)."""
    filters: AuditFilters = {}
    if team:
        filters["team"] = team
    if event_type:
        filters["type"] = event_type
    if model:
        filters["model"] = model
    if correlation_id:
        filters["correlation_id"] = correlation_id
    with registry(api_key) as client:
        entries = list(islice(client.audit_entries(page_size=min(limit, _PAGE), **filters), limit))
    if as_json:
        print_json(entries)
        return
    rows = [(e.received_at, e.type, e.model, e.actor, e.outcome, e.correlation_id) for e in entries]
    table(None, ["received", "type", "model", "actor", "outcome", "correlation id"], rows)


def _model_fields(model: ModelPublic) -> dict[str, object]:
    return {
        "model id": model.model_id,
        "latest version": model.latest_version,
        "versions": model.version_count,
        "framework": model.framework,
        "targets": model.deployment_targets,
        "description": model.description,
        "tags": model.tags,
        "aliases": model.aliases,
        "owners": [owner.get("name", "") for owner in model.owners],
        "links": model.links,
        "created": model.created_at,
        "updated": model.updated_at,
    }


def _version_fields(version: ModelVersionPublic) -> dict[str, object]:
    return {
        "model id": version.model_id,
        "framework": f"{version.framework} {version.framework_version or ''}".strip(),
        "artifact": version.artifact_uri,
        "digest": version.artifact_digest,
        "lifecycle": version.lifecycle,
        "status": version.status,
        "environments": {env: s.status for env, s in version.environments.items()},
        "approval": version.approval.status + (f" by {version.approval.by}" if version.approval.by else ""),
        "provenance": _provenance_text(version),
        "aliases": version.aliases,
        "targets": version.deployment_targets,
        "description": version.description,
        "tags": version.tags,
        "metrics": version.metrics,
        "created": version.created_at,
        "created by": version.created_by,
    }


def _provenance_text(version: ModelVersionPublic) -> str | None:
    """Who signed the version's files, when its signature was verified (``None``: registered without one)."""
    found = version.provenance
    if found is None:
        return None
    state = "verified" if found.verified else "not verified"
    files = len(found.manifest.files)
    return f"{state}: {files} files signed by {found.signer.name} ({found.signer.fingerprint}), {found.manifest_digest}"
