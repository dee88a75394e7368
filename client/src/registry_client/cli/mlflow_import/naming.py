"""MLflow's names, tag keys, versions and flavors in this registry's terms (pure functions)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from registry_contract import catalog

SLUG = re.compile(catalog.SLUG_PATTERN)
MAX_SLUG = 63
# MLflow flavor → this registry's framework (catalog.FRAMEWORKS). ``python_function`` is every
# model's generic flavor: alone it means a custom pyfunc model.
FLAVOR_FRAMEWORKS: dict[str, str] = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "pytorch": "pytorch",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "onnx": "onnx",
    "transformers": "huggingface",
    "sentence_transformers": "huggingface",
    "spark": "spark-ml",
    "statsmodels": "statsmodels",
    "prophet": "prophet",
}
PYFUNC = "python_function"
LOGGED_MODELS_TAG = "mlflow.log-model.history"  # a run's models as MLflow 2 recorded them, with their flavors


def slugify(text: str) -> str | None:
    """A slug for ``text`` (``Card Fraud XGB`` → ``card-fraud-xgb``), or ``None`` if nothing of it is left.

    Accents are folded to ASCII and apostrophes dropped (``Churn's`` → ``churns``); every other run
    of characters outside ``[a-z0-9]`` becomes one ``-``. A slug longer than 63 characters is cut
    and ends with 8 hex of the original's SHA-256, so two long names that share a beginning stay apart.
    """
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"['`]", "", folded)).strip("-")
    if not slug:
        return None
    if len(slug) > MAX_SLUG:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        slug = slug[: MAX_SLUG - 9].rstrip("-") + "-" + digest
    return slug


def tag_key(key: str) -> str | None:
    """An MLflow tag key as a registry tag key (no ``.``, no NUL, no leading ``$``), or ``None`` if too long or empty.

    MLflow's keys are dotted (``mlflow.source.git.commit``); the registry stores tags as document
    fields, where a dot would be a path, so dots become underscores.
    """
    cleaned = key.replace(".", "_").replace("\x00", "")
    if cleaned.startswith("$"):
        cleaned = "_" + cleaned[1:]
    return cleaned if 1 <= len(cleaned) <= catalog.MAX_TAG_KEY else None


def semver_of(version: int) -> str:
    """MLflow's integer version ``N`` as ``N.0.0``."""
    return f"{version}.0.0"


def framework_of(flavors: Mapping[str, Any]) -> tuple[str | None, str | None, list[str]]:
    """The framework and its version from an MLmodel's ``flavors``, and the flavors that name no framework here.

    The first flavor with a framework wins; ``python_function`` alone is ``custom``. The version is
    the flavor's ``*_version`` entry (``sklearn_version: 1.5.2``), if it has one.
    """
    unknown = [name for name in flavors if name != PYFUNC and name not in FLAVOR_FRAMEWORKS]
    for name, config in flavors.items():
        if name in FLAVOR_FRAMEWORKS:
            return FLAVOR_FRAMEWORKS[name], _flavor_version(config), unknown
    if list(flavors) == [PYFUNC]:
        return "custom", None, []
    return None, None, unknown


def _flavor_version(config: Any) -> str | None:
    if not isinstance(config, Mapping):
        return None
    for key, value in config.items():
        if str(key).endswith("_version") and key != "python_version" and isinstance(value, str | int | float):
            text = str(value).strip()
            return text[:64] if text else None
    return None


def logged_flavors(run_tags: Mapping[str, str], source: str) -> dict[str, Any] | None:
    """The flavors MLflow 2 recorded on the run for the model at ``source`` (its ``mlflow.log-model.history`` tag).

    An entry matches when its ``artifact_path`` ends the source's path (the last one logged wins); a
    run with one logged model needs no match. MLflow 3 no longer writes this tag.
    """
    try:
        entries = json.loads(run_tags.get(LOGGED_MODELS_TAG) or "[]")
    except ValueError:
        return None
    if not isinstance(entries, list):
        return None
    models = [e for e in entries if isinstance(e, dict) and isinstance(e.get("flavors"), dict)]
    path = urlsplit(source).path.rstrip("/")
    matching = [e for e in models if e.get("artifact_path") and path.endswith("/" + str(e["artifact_path"]).strip("/"))]
    chosen = matching[-1] if matching else (models[0] if len(models) == 1 else None)
    return dict(chosen["flavors"]) if chosen else None
