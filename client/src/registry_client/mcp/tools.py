"""The six read-only MCP tools and the model-card resource, over an injected HTTP caller.

Every tool is one GET of the read API with the caller's key, so what an assistant may see is
exactly what that key may see over HTTP; a refusal is a tool error carrying the problem's detail.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from importlib import metadata
from typing import Annotated, Any, Literal
from urllib.parse import quote

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from registry_client.errors import RegistryError
from registry_client.json_api import JsonApi, Params
from registry_client.mcp.results import (
    DeploymentStatus,
    ModelCardResult,
    SearchResults,
    VersionPage,
    comparison_text,
    deployment_text,
    model_text,
    search_text,
    versions_text,
)
from registry_contract import catalog
from registry_contract.compare_views import MAX_COMPARED_VERSIONS, VersionComparison
from registry_contract.messages import Framework
from registry_contract.views import ModelPublic

ApiOf = Callable[[Context], JsonApi]
"""The caller's API for one MCP request (its key, its correlation id)."""

CARD_URI = "registry://models/{team}/{name}/card"
SLUG = re.compile(catalog.SLUG_PATTERN)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
INSTRUCTIONS = """\
Read-only access to a machine-learning model registry. A model is named by its team and name \
(lowercase slugs, e.g. team "fraud", name "card-scorer") and has SemVer versions, each with a \
framework, artifact, metrics, lifecycle state and a deployment status per environment.
Start with search_models when you do not know a model's exact team and name; then use get_model, \
list_versions, get_model_card (its full documentation), get_deployment_status or compare_versions \
(metric deltas and differences between versions).
You see only the models of your API key's team and those shared with it: any other model answers \
"does not exist or is not visible to you". Report only what the tools return; a card section that \
says it is not recorded means the registry does not know it."""

Team = Annotated[str, Field(pattern=catalog.SLUG_PATTERN, description="The owning team's slug, e.g. 'fraud'.")]
Name = Annotated[str, Field(pattern=catalog.SLUG_PATTERN, description="The model's name within its team (a slug).")]
Version = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,127}$",
        description="A SemVer version such as '1.4.0', or 'latest' (the highest non-prerelease version).",
    ),
]
SearchQuery = Annotated[
    str,
    Field(
        min_length=1,
        max_length=512,
        description=(
            "Free text over names, descriptions, tags, frameworks, deployment targets, metric names, status and "
            'documentation. Supports "quoted phrases", field terms (framework:xgboost, tag:owner=alice, '
            "status:deployed, env:prod), typos in longer words, and a prefix of the last word."
        ),
    ),
]
DeploymentStatusName = Literal[catalog.DEPLOYMENT_STATUSES]  # type: ignore[valid-type]
Cursor = Annotated[
    str | None, Field(max_length=2048, description="The next_cursor of the previous answer, to get the next page.")
]


def _answer(structured: dict[str, Any], text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


async def _read(api: JsonApi, path: str, params: Params | None = None) -> dict[str, Any]:
    """The API's answer, or a tool error that says why not (never a traceback)."""
    try:
        return await api.get(path, params)
    except RegistryError as exc:
        raise ToolError(_says(exc)) from None


def _says(exc: RegistryError) -> str:
    """What a refusal tells the assistant: the problem's detail and fields, and the HTTP status."""
    return f"{exc.explanation} (HTTP {exc.status})" if exc.status else exc.explanation


def _model_path(team: str, name: str) -> str:
    return f"/v1/models/{team}/{name}"


def _card_path(team: str, name: str) -> str:
    return f"/v1/assistant/models/{team}/{name}/card"


def _description(tool: Callable[..., Any]) -> str:
    """A tool's docstring with each paragraph on one line, as clients show descriptions."""
    paragraphs = inspect.cleandoc(tool.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def build_server(api_of: ApiOf) -> MCPServer:
    """An MCP server with the registry's read-only tools and card resources, calling the API via ``api_of``."""
    server: MCPServer = MCPServer(
        name="model-registry",
        title="Model Registry",
        version=metadata.version("registry-client"),
        instructions=INSTRUCTIONS,
        log_level="WARNING",
    )

    async def search_models(
        query: SearchQuery,
        ctx: Context,
        framework: Annotated[Framework | None, Field(description="Only models built with this framework.")] = None,
        status: Annotated[
            DeploymentStatusName | None, Field(description="Only models with a version in this deployment status.")
        ] = None,
        environment: Annotated[
            str | None,
            Field(pattern=catalog.SLUG_PATTERN, description="Only models deployed to this environment, e.g. 'prod'."),
        ] = None,
        team: Annotated[str | None, Field(pattern=catalog.SLUG_PATTERN, description="Only this team's models.")] = None,
        limit: Annotated[int, Field(ge=1, le=catalog.MAX_PAGE_SIZE, description="How many results (best first).")] = 10,
        cursor: Cursor = None,
    ) -> Annotated[CallToolResult, SearchResults]:
        """Find models by free text, ranked by relevance, when you do not know their exact team and name.

        Answers the best matches with each model's latest version, highlighted snippets showing why it
        matched, and facet counts (framework, status, team, deployment target, environment) over the
        models your key may read. Filters narrow the search; page on with next_cursor.
        """
        params = {"q": query, "framework": framework, "status": status, "environment": environment, "team": team}
        body = await _read(api_of(ctx), "/v1/assistant/search", {**params, "limit": limit, "cursor": cursor})
        return _answer(body, search_text(query, SearchResults.model_validate(body)))

    async def get_model(team: Team, name: Name, ctx: Context) -> Annotated[CallToolResult, ModelPublic]:
        """Get one model by team and name: description, framework, latest version, version count, targets, tags.

        Use search_models first when you do not know the exact team and name.
        """
        body = await _read(api_of(ctx), _model_path(team, name))
        return _answer(body, model_text(ModelPublic.model_validate(body)))

    async def list_versions(
        team: Team,
        name: Name,
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=catalog.MAX_PAGE_SIZE, description="How many versions per page.")] = 20,
        cursor: Cursor = None,
    ) -> Annotated[CallToolResult, VersionPage]:
        """List a model's versions, newest first by SemVer precedence.

        Each version has its framework, artifact, metrics, parameters, tags, lifecycle state and deployment
        status per environment. Page on by passing next_cursor back as cursor.
        """
        body = await _read(api_of(ctx), f"{_model_path(team, name)}/versions", {"limit": limit, "cursor": cursor})
        return _answer(body, versions_text(team, name, VersionPage.model_validate(body)))

    async def get_model_card(
        team: Team,
        name: Name,
        ctx: Context,
        version: Annotated[
            Version | None, Field(description="The version to describe; the latest when omitted.")
        ] = None,
    ) -> Annotated[CallToolResult, ModelCardResult]:
        """Get a model's card: its documentation as markdown and as structured sections.

        Model details and owners, intended use, metrics per version with the change from the previous one,
        training parameters and lineage, deployment status per environment, lifecycle, tags and caveats.
        A section the registry has no data for says it is not recorded: do not fill it in.
        """
        body = await _read(api_of(ctx), _card_path(team, name), {"version": version})
        return _answer(body, ModelCardResult.model_validate(body).markdown)

    async def get_deployment_status(
        team: Team,
        name: Name,
        ctx: Context,
        version: Annotated[Version, Field(description="The version to check; the latest when omitted.")] = "latest",
    ) -> Annotated[CallToolResult, DeploymentStatus]:
        """Get where a model version is deployed: overall, and per environment with target and since when.

        The overall status is the most advanced across environments (registered, deploying, deployed,
        failed, rolled_back, retired).
        """
        body = await _read(api_of(ctx), f"{_model_path(team, name)}/versions/{quote(version, safe='')}")
        status = DeploymentStatus.model_validate(body)
        return _answer(status.model_dump(mode="json"), deployment_text(status))

    async def compare_versions(
        team: Team,
        name: Name,
        versions: Annotated[
            list[Version],
            Field(
                min_length=2,
                max_length=MAX_COMPARED_VERSIONS,
                description="The versions to compare, the base first, e.g. ['1.3.0', '1.4.0'] ('latest' allowed).",
            ),
        ],
        ctx: Context,
    ) -> Annotated[CallToolResult, VersionComparison]:
        """Compare versions of one model side by side, each later version against the first (the base).

        Answers each version's metrics, tags, parameters, lineage (parent, datasets, code commit, run),
        approval, lifecycle, aliases and deployment status per environment, and for each later version
        its metric deltas (absolute and relative; metrics either lacks), tags and parameters added,
        removed or changed, datasets added or removed, and a changed code commit or parent.
        """
        body = await _read(api_of(ctx), f"{_model_path(team, name)}/compare", {"versions": ",".join(versions)})
        return _answer(body, comparison_text(VersionComparison.model_validate(body)))

    for tool, title in (
        (search_models, "Search models"),
        (get_model, "Get a model"),
        (list_versions, "List a model's versions"),
        (get_model_card, "Get a model card"),
        (get_deployment_status, "Get deployment status"),
        (compare_versions, "Compare versions"),
    ):
        server.add_tool(tool, title=title, description=_description(tool), annotations=READ_ONLY)

    @server.resource(
        CARD_URI,
        name="model-card",
        title="Model card",
        description="The card of a model's latest version, as markdown (what get_model_card answers).",
        mime_type="text/markdown",
    )
    async def model_card(team: str, name: str, ctx: Context) -> str:
        if not (SLUG.match(team) and SLUG.match(name)):
            raise ResourceNotFoundError(f"no model {team}/{name}: team and name are lowercase slugs")
        try:
            body = await api_of(ctx).get(_card_path(team, name))
        except RegistryError as exc:
            raise (ResourceNotFoundError if exc.status == 404 else ResourceError)(_says(exc)) from None
        return str(body.get("markdown", ""))

    return server
