"""Hand-made stored documents for search tests: one model and its versions, with only what a test names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from query.search import SearchDocument, search_document
from registry_contract.documents import Document
from registry_contract.ids import model_id, version_id
from registry_contract.versioning import precedence_key

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def version_doc(team: str, name: str, version: str = "1.0.0", **fields: Any) -> Document:
    """A stored version document (registered, active) with ``fields`` overriding the defaults."""
    return {
        "_id": version_id(team, name, version),
        "model_id": model_id(team, name),
        "team": team,
        "name": name,
        "version": version,
        "version_key": precedence_key(version),
        "prerelease": "-" in version,
        "framework": "xgboost",
        "artifact_uri": f"s3://models/{team}/{name}/{version}",
        "deployment_targets": ["sagemaker"],
        "description": "",
        "tags": {},
        "metrics": {},
        "lifecycle": "active",
        "status": "registered",
        "environments": {},
        "created_at": T0,
        "updated_at": T0,
        **fields,
    }


def model_doc(team: str, name: str, latest: Document, **fields: Any) -> Document:
    """A stored model document whose headline is ``latest``."""
    return {
        "_id": model_id(team, name),
        "team": team,
        "name": name,
        "latest_version": latest["version"],
        "framework": latest["framework"],
        "deployment_targets": list(latest["deployment_targets"]),
        "description": latest["description"],
        "tags": dict(latest["tags"]),
        "readers": [team],
        "created_at": T0,
        "updated_at": latest["updated_at"],
        **fields,
    }


def deployed(*environments: str, status: str = "deployed") -> dict[str, Any]:
    """Version fields of a version in ``status`` in each of ``environments``."""
    at = T0 + timedelta(days=1)
    envs = {
        env: {"status": status, "occurred_at": at, "report_id": f"r-{env}", "updated_at": at} for env in environments
    }
    return {"environments": envs, "status": status}


def searchable(
    team: str, name: str, *, readers: list[str] | None = None, age_days: int = 0, **fields: Any
) -> SearchDocument:
    """The search document of a one-version model; ``fields`` are the version's."""
    at = T0 + timedelta(days=age_days)
    version = version_doc(team, name, created_at=at, updated_at=at, **fields)
    return search_document(model_doc(team, name, version, readers=readers or [team]), [version])
