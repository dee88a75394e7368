"""Prometheus metrics of the query service."""

from prometheus_client import Counter, Gauge

SEARCH_BUILD_SECONDS = Gauge("registry_search_build_seconds", "How long the last build of the search index took")
SEARCH_EVENTS_APPLIED = Counter(
    "registry_search_models_reprojected_total", "Models indexed again from the read model after a change"
)
SEARCH_INDEXED_DOCUMENTS = Gauge(
    "registry_search_indexed_documents",
    "Documents the search indexes hold: the platform's (one per model) and the teams' (one per model and reader team)",
    ["index"],
)
FEED_WARM_SECONDS = Gauge(
    "registry_feed_warm_seconds", "How long rendering every feed document into the cache took after start-up"
)
FEED_CACHED_DOCUMENTS = Gauge("registry_feed_cached_documents", "Rendered feed documents held in memory")
PROJECTION_LAG_SECONDS = Gauge(
    "registry_projection_lag_seconds",
    "How far the read model is behind: now minus the time of the newest applied event while more wait (0: caught up)",
)
PROJECTION_APPLIED_EVENTS = Counter(
    "registry_projection_applied_events_total", "Events applied to the read model (replays it skipped not counted)"
)
PROJECTION_UNSIGNED_EVENTS = Counter(
    "registry_projection_unsigned_events_total", "Records on registry.events without a service's signature, not applied"
)
PROJECTION_MODELS = Gauge("registry_projection_models", "Models the in-memory read model holds")
PROJECTION_VERSIONS = Gauge(
    "registry_projection_versions", "Versions the in-memory read model holds (bounded by QUERY_PROJECTION_MAX_VERSIONS)"
)
