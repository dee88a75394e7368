"""``build_projection``: the read model, the task that keeps it current, and its readiness check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from query import metrics
from query.config import QuerySettings
from query.projection import routes
from query.projection.consumer import Projection
from query.projection.model import ReadModel
from query.projection.owners import OwnerLog
from query.projection.storage import INDEXES, MongoProjectionStore
from shared.chassis.http_app import Service
from shared.chassis.mongo import ensure_indexes
from shared.chassis.verifiers import internal_token

Background = Callable[[], Awaitable[None]]
Check = Callable[[], Awaitable[None]]


def owner_logs(settings: QuerySettings) -> list[OwnerLog]:
    """Registration's log (``REGISTRATION_INTERNAL_URL``), then the tracker's (``QUERY_DEPLOY_TRACKER_URL``).

    In this order: the catch-up reads them in it, and the tracker's reports name registration's versions.
    """
    token, ca_file = internal_token(settings), settings.internal_ca_file
    return [
        OwnerLog("r", settings.registration_internal_url, token, ca_file=ca_file),
        OwnerLog("d", settings.deploy_tracker_url, token, ca_file=ca_file),
    ]


def build_projection(service: Service, settings: QuerySettings) -> tuple[ReadModel, Background, Check]:
    """Build the read model over the query's database; serve its rebuild route (``app.state.projection``).

    The caller runs the returned task in the background (``service.in_background("projection", task)``)
    and adds the check to readiness (``service.readiness.checks["projection"] = check``).
    """
    model = ReadModel()
    projection = Projection(
        model,
        MongoProjectionStore(service.db),
        owner_logs(settings),
        settings=settings,
        flush_seconds=settings.projection_flush_seconds,
        linger_ms=settings.projection_linger_ms,
        max_versions=settings.projection_max_versions,
        signer=service.signer,
    )
    service.on_start(lambda: ensure_indexes(service.db, INDEXES))
    metrics.PROJECTION_MODELS.set_function(lambda: len(model.models))
    metrics.PROJECTION_VERSIONS.set_function(model.version_count)
    # The projection's consumer (its own, not a subscriber) is not paced by shared.chassis.fetch_waits:
    # an event on registry.events is readable here as soon after as ever, quiet spell or not. A
    # pipeline that reads the topic and then asks this service for the version is not made to race.
    service.app.state.projection = projection
    service.app.include_router(routes.router)
    return model, projection.run, projection.ready
