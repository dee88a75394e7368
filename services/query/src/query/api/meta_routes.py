"""``GET /v1/meta``: the enumerations and limits of the contract, for clients and forms."""

from fastapi import APIRouter, Request

from query.api.reads import MODEL_SORTS
from query.deps import INVALID, REFUSALS, Caller
from registry_contract import catalog
from registry_contract.read_views import Limits, Meta

router = APIRouter(prefix="/v1", tags=["meta"], responses=REFUSALS | INVALID)


@router.get("/meta")
async def get_meta(request: Request, _: Caller) -> Meta:
    """Enumerations and limits of the contract."""
    return Meta(
        service_version=request.app.version,
        frameworks=list(catalog.FRAMEWORKS),
        deployment_targets=list(catalog.DEPLOYMENT_TARGETS),
        lifecycle_states=list(catalog.LIFECYCLE_STATES),
        deployment_statuses=list(catalog.DEPLOYMENT_STATUSES),
        slug_pattern=catalog.SLUG_PATTERN,
        semver="2.0.0",
        limits=Limits(
            max_payload_bytes=catalog.MAX_PAYLOAD_BYTES,
            max_page_size=catalog.MAX_PAGE_SIZE,
            default_page_size=catalog.DEFAULT_PAGE_SIZE,
            max_tags=catalog.MAX_TAGS,
        ),
        model_sorts=[*MODEL_SORTS, *(f"-{s}" for s in MODEL_SORTS)],
    )
