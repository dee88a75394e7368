"""Query service settings (``QUERY_`` prefix over the shared ones)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.chassis.settings import CommonSettings


class QuerySettings(CommonSettings):
    """The read API's settings."""

    model_config = SettingsConfigDict(env_prefix="QUERY_", extra="ignore", populate_by_name=True)

    service_name: str = "query"
    http_port: int = 8080
    feed_cache_documents: int = Field(
        50_000, ge=0, description="rendered feed documents kept in memory (0: render every time)"
    )
