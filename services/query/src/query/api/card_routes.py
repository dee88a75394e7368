"""Model card route: a model's card as structured JSON with its markdown, or as markdown alone."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from query.api.card_markdown import card_markdown
from query.api.cards import build_card, described_version
from query.api.lookup import Lookup, not_found
from query.deps import CONSISTENT, INVALID, NOT_FOUND, REFUSALS, UNAVAILABLE, Visible
from registry_contract.documents import Document
from registry_contract.versioning import VersionRange, precedence_key
from registry_contract.views import ModelCardPublic
from shared.chassis.http_params import SlugPath
from shared.chassis.problems import Problem

MAX_CARD_VERSIONS = 50  # versions one card reads for its metrics and lifecycle sections
MAX_CARD_REPORTS = 50  # most recent deployment reports of the described version it reads
MARKDOWN = "text/markdown; charset=utf-8"
JSON = "application/json"

router = APIRouter(
    prefix="/v1/assistant", tags=["assistant"], responses=REFUSALS | INVALID | UNAVAILABLE, dependencies=CONSISTENT
)
Version = Annotated[str | None, Query(max_length=256, description="the version to describe (default: the latest)")]
_AS_MARKDOWN: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"The card; `Accept: text/markdown` gives the markdown alone ({MARKDOWN})",
        "content": {"text/markdown": {"schema": {"type": "string"}}},
    }
}


@router.get("/models/{team}/{name}/card", response_model=ModelCardPublic, responses=NOT_FOUND | _AS_MARKDOWN)
async def get_model_card(
    visible: Visible,
    team: SlugPath,
    name: SlugPath,
    response: Response,
    version: Version = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ModelCardPublic | Response:
    """A model card: details, intended use, metrics per version, lineage, deployments, lifecycle, tags, caveats.

    Also each version's approval status and aliases, the described version's approval decision
    (who, when, why) and the model's aliases.

    Only recorded data appears; a section without any says so. The metrics cover the newest
    versions by SemVer precedence (at most ``MAX_CARD_VERSIONS``; the card says when there are more).
    """
    model = await visible.model(team, name)
    version = None if version == "latest" else version
    try:
        key = precedence_key(version) if version else None
    except ValueError:
        raise Problem("invalid", f"{version!r} is not a SemVer 2.0 version or 'latest'") from None
    versions = await card_versions(visible, model, key or _key_of(model.get("latest_version")))
    try:
        described = described_version(model, versions, version)
    except ValueError:
        raise not_found(f"version {version} of {team}/{name}") from None
    shown = visible.reports_after(model)
    reports = await visible.reads.recent_deployments(described, MAX_CARD_REPORTS, shown) if described else None
    card = build_card(model, versions, reports, described["version"] if described else None)
    markdown = card_markdown(card)
    response.headers["Vary"] = "Accept"
    if prefers_markdown(accept):
        return Response(markdown, media_type=MARKDOWN, headers={"Vary": "Accept"})
    return ModelCardPublic(card=card, markdown=markdown)


async def card_versions(visible: Lookup, model: Document, key: str | None) -> list[Document]:
    """The newest versions, or (when the version of precedence ``key`` is older) the ones up to it."""
    newest = await visible.reads.list_versions(
        model, version_range=None, include_prerelease=True, limit=MAX_CARD_VERSIONS, cursor=None
    )
    if key is None or any(doc["version_key"] == key for doc in newest.items) or not newest.next_cursor:
        return newest.items
    # An old version: read it and the ones before it, so its change from the previous is right.
    window = await visible.reads.list_versions(
        model, version_range=VersionRange({"$lte": key}), include_prerelease=True, limit=MAX_CARD_VERSIONS, cursor=None
    )
    return window.items


def _key_of(version: Any) -> str | None:
    try:
        return precedence_key(version) if isinstance(version, str) else None
    except ValueError:
        return None


def prefers_markdown(accept: str | None) -> bool:
    """Whether ``accept`` ranks ``text/markdown`` above JSON (ties, and no header, go to JSON)."""
    best: dict[str, tuple[float, int]] = {JSON: (0.0, -1), "text/markdown": (0.0, -1)}
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        for offered in best:
            specificity = _specificity(media.lower(), offered)
            if specificity > best[offered][1]:
                best[offered] = (quality, specificity)
    markdown, json = best["text/markdown"], best[JSON]
    return markdown[0] > 0 and markdown > json


def _specificity(media_range: str, offered: str) -> int:
    """How closely ``media_range`` names ``offered``: 2 exactly, 1 by type, 0 by ``*/*``, -1 not at all."""
    kind = offered.split("/")[0]
    return {offered: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range, -1)
