"""Public JSON shapes of stored documents, shared by the write and read sides."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.mongo import Document

_VERSION_FIELDS = (
    "model_id",
    "team",
    "name",
    "version",
    "framework",
    "framework_version",
    "artifact_uri",
    "artifact_digest",
    "deployment_targets",
    "description",
    "tags",
    "metrics",
    "parameters",
    "signature",
    "lifecycle",
    "created_at",
    "updated_at",
    "created_by",
)


def _iso(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def version_public(doc: Document) -> dict[str, Any]:
    """A model version as clients see it; deployment fields default until a first report."""
    body = {name: _iso(doc.get(name)) for name in _VERSION_FIELDS}
    body["prerelease"] = bool(doc.get("prerelease"))
    body["status"] = doc.get("status", "registered")
    body["environments"] = doc.get("environments", {})
    return body


def model_public(doc: Document) -> dict[str, Any]:
    """A model with the headline fields of its latest version."""
    return {
        "model_id": doc["_id"],
        "team": doc["team"],
        "name": doc["name"],
        "latest_version": doc.get("latest_version"),
        "version_count": doc.get("version_count", 0),
        "framework": doc.get("framework"),
        "deployment_targets": doc.get("deployment_targets", []),
        "description": doc.get("description", ""),
        "tags": doc.get("tags", {}),
        "created_at": _iso(doc.get("created_at")),
        "updated_at": _iso(doc.get("updated_at")),
    }
