"""Read registered models, their versions, aliases and runs from an MLflow tracking server's REST API.

Plain HTTP with httpx: the ``mlflow`` package is a test-only dependency and never imported here.
Endpoints (MLflow 2.x and 3.x, all ``GET`` with query parameters, under the tracking URI):

- ``/api/2.0/mlflow/registered-models/search`` (``max_results`` ≤ 1000, ``page_token``, ``order_by``)
- ``/api/2.0/mlflow/model-versions/search`` (``filter=name='…'``, ``max_results``, ``page_token``)
- ``/api/2.0/mlflow/model-versions/get-download-uri`` (where a ``models:/`` source's files are)
- ``/api/2.0/mlflow/runs/get`` and ``/api/2.0/mlflow/experiments/get`` (lineage)
- ``/model-versions/get-artifact?path=MLmodel`` (the UI's artifact route; only with ``read_flavors``:
  the server must be able to read the artifact store, and MLflow 3 records flavors nowhere else)

Every read is bounded: page sizes, a cap on models and on versions per model (what lies beyond is
reported in the snapshot's notes, not silently dropped), a timeout per request, a size cap on every
answer (streamed, refused past the cap) and a smaller one on MLmodel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import yaml
from pydantic import BaseModel, ValidationError

from registry_client.cli.mlflow_import.records import (
    MlflowModelVersion,
    MlflowRegisteredModel,
    MlflowRun,
    MlflowSnapshot,
)

M = TypeVar("M", bound=BaseModel)
API = "/api/2.0/mlflow/"
MAX_MODELS_PAGE = 1000  # registered-models/search refuses more per page
DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a full page of 1000 models with long descriptions fits


class MlflowSourceError(Exception):
    """Reading from the MLflow tracking server failed; the message says what and where."""


class MlflowUnreachable(MlflowSourceError):
    """The tracking server did not answer (refused connection, DNS failure, time-out)."""


class MlflowRequestFailed(MlflowSourceError):
    """The tracking server answered with an error status (its ``error_code`` and ``message`` kept)."""

    def __init__(self, what: str, status: int, error_code: str | None, message: str) -> None:
        hint = " (check the credentials given for MLflow)" if status in (401, 403) else ""
        super().__init__(f"MLflow refused {what}: {status} {error_code or ''} {message}".rstrip() + hint)
        self.status = status
        self.error_code = error_code
        self.server_message = message


class MlflowUnexpectedAnswer(MlflowSourceError):
    """The tracking server answered 2xx with something that is not the documented JSON."""


class MlflowAnswerTooLarge(MlflowSourceError):
    """An answer grew past ``max_answer_bytes``: it is refused, not read into memory."""


@dataclass(frozen=True)
class SourceLimits:
    """Bounds on what one read asks of the server."""

    page_size: int = 100
    max_models: int = 1_000
    max_versions: int = 1_000  # per registered model
    timeout: float = 10.0  # seconds, per request
    max_mlmodel_bytes: int = 256 * 1024
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES  # any one API answer, errors included

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_MODELS_PAGE:
            raise ValueError(f"page_size must be 1-{MAX_MODELS_PAGE}")
        if self.max_models < 1 or self.max_versions < 1 or self.timeout <= 0 or self.max_answer_bytes < 1:
            raise ValueError("max_models, max_versions, timeout and max_answer_bytes must be positive")


def name_filter(name: str) -> str | None:
    """MLflow's filter for one model's versions, quoted as its parser allows (``None`` if it cannot be)."""
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    return None


class MlflowSource:
    """A reader of one tracking server (a context manager: it owns an HTTP connection pool)."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        limits: SourceLimits | None = None,
        read_flavors: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(tracking_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the MLflow tracking URI must be http(s)://host[:port][/prefix], not {tracking_uri!r}")
        self.tracking_uri = tracking_uri.rstrip("/")
        self.limits = limits or SourceLimits()
        self.read_flavors = read_flavors
        headers = {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        self._http = httpx.Client(
            base_url=self.tracking_uri,
            headers=headers,
            auth=basic_auth,
            timeout=self.limits.timeout,
            transport=transport,
            follow_redirects=False,
        )
        self._experiments: dict[str, str | None] = {}
        self._notes: list[str] = []

    def __enter__(self) -> MlflowSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def read(
        self,
        *,
        filter_string: str | None = None,
        select: Callable[[str], bool] | None = None,
        progress: Callable[[MlflowRegisteredModel], None] | None = None,
    ) -> MlflowSnapshot:
        """Every registered model (or those ``filter_string`` selects, in MLflow's syntax) with versions and runs.

        ``select`` chooses among the listed models by name: only the chosen ones' versions and runs
        are read, and the snapshot's ``listed`` still names every model the listing found.
        """
        self._notes = []
        models: list[MlflowRegisteredModel] = []
        runs: dict[str, MlflowRun] = {}
        missing_runs: set[str] = set()
        listed = self.registered_models(filter_string=filter_string)
        for model in listed:
            if select is not None and not select(model.name):
                continue
            model = model.model_copy(update={"versions": tuple(self.model_versions(model.name))})
            for version in model.versions:
                if version.run_id and version.run_id not in runs and version.run_id not in missing_runs:
                    run = self.run(version.run_id)
                    if run is None:
                        missing_runs.add(version.run_id)
                        self._notes.append(
                            f"run {version.run_id} (of {model.name!r} version {version.version}) "
                            "was not found: its lineage is the run id only"
                        )
                    else:
                        runs[run.run_id] = run
            models.append(model)
            if progress:
                progress(model)
        names = tuple(model.name for model in listed)
        return MlflowSnapshot(self.tracking_uri, tuple(models), runs, tuple(self._notes), names)

    def registered_models(self, *, filter_string: str | None = None) -> list[MlflowRegisteredModel]:
        """Registered models by name, at most ``max_models`` (MLflow 3 leaves prompts out of this search)."""
        params: dict[str, Any] = {"order_by": ["name ASC"], **({"filter": filter_string} if filter_string else {})}
        found, more = self._paged("registered-models/search", params, "registered_models", self.limits.max_models)
        if more:
            self._notes.append(
                f"more than {self.limits.max_models} registered models: read the first "
                f"{self.limits.max_models} by name (raise the limit to read the rest)"
            )
        return [self._parse(MlflowRegisteredModel, item, "a registered model") for item in found]

    def model_versions(self, name: str) -> list[MlflowModelVersion]:
        """A model's versions in version order, at most ``max_versions``, each with its files' location resolved."""
        query = name_filter(name)
        if query is None:
            self._notes.append(
                f"{name!r} has both kinds of quotes, which MLflow's filter cannot express: its versions were not read"
            )
            return []
        params = {"filter": query, "order_by": ["version_number ASC"]}
        found, more = self._paged("model-versions/search", params, "model_versions", self.limits.max_versions)
        if more:
            self._notes.append(
                f"{name!r} has more than {self.limits.max_versions} versions: read the first {self.limits.max_versions}"
            )
        versions = [self._parse(MlflowModelVersion, item, "a model version") for item in found]
        return [self._resolved(version) for version in versions]

    def run(self, run_id: str) -> MlflowRun | None:
        """The run with its experiment's name, or ``None`` if the server has no such run."""
        answer = self._get("runs/get", {"run_id": run_id}, missing_ok=True)
        if answer is None:
            return None
        try:
            found = answer.get("run")
            if not isinstance(found, dict):
                raise ValueError("no run object")
            run = MlflowRun.from_api(found)
        except (ValidationError, ValueError, TypeError, AttributeError) as exc:
            raise MlflowUnexpectedAnswer(f"runs/get answered something that is not a run: {exc}") from None
        return run.model_copy(update={"experiment_name": self.experiment_name(run.experiment_id)})

    def experiment_name(self, experiment_id: str) -> str | None:
        """An experiment's name (asked once per experiment), or ``None`` if it does not exist."""
        if experiment_id not in self._experiments:
            answer = self._get("experiments/get", {"experiment_id": experiment_id}, missing_ok=True)
            name = ((answer or {}).get("experiment") or {}).get("name")
            self._experiments[experiment_id] = str(name) if name else None
        return self._experiments[experiment_id]

    def _resolved(self, version: MlflowModelVersion) -> MlflowModelVersion:
        update: dict[str, Any] = {}
        if urlsplit(version.source).scheme == "models":
            answer = self._get("model-versions/get-download-uri", {"name": version.name, "version": version.version})
            update["storage_location"] = str((answer or {}).get("artifact_uri") or "") or None
        if self.read_flavors:
            update["flavors"] = self._flavors(version)
        return version.model_copy(update=update) if update else version

    def _flavors(self, version: MlflowModelVersion) -> dict[str, Any] | None:
        """The ``flavors`` of the version's MLmodel file through the server, or ``None`` (and a note) if unreadable."""
        what = f"the MLmodel file of {version.name!r} version {version.version}"
        params = {"name": version.name, "version": str(version.version), "path": "MLmodel"}
        try:
            with self._http.stream("GET", "/model-versions/get-artifact", params=params) as response:
                if response.status_code != 200:
                    self._notes.append(f"{what} could not be read: the server answered {response.status_code}")
                    return None
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.limits.max_mlmodel_bytes:
                        self._notes.append(f"{what} is larger than {self.limits.max_mlmodel_bytes} bytes: not read")
                        return None
        except httpx.TransportError as exc:
            raise MlflowUnreachable(f"MLflow at {self.tracking_uri} did not answer: {exc}") from None
        try:
            flavors = (yaml.safe_load(body) or {}).get("flavors")
        except (yaml.YAMLError, AttributeError):
            flavors = None
        if not isinstance(flavors, dict):
            self._notes.append(f"{what} names no flavors")
            return None
        return {str(k): v for k, v in flavors.items()}

    def _paged(self, path: str, params: dict[str, Any], key: str, cap: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``cap`` items over as many pages as it takes; also whether the server holds more."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page_params = {**params, "max_results": self.limits.page_size, **({"page_token": token} if token else {})}
            answer = self._get(path, page_params) or {}
            page = answer.get(key) or []
            if not isinstance(page, list):
                raise MlflowUnexpectedAnswer(f"{path} answered {key} that is not a list")
            items.extend(page)
            token = answer.get("next_page_token") or None
            if len(items) > cap:
                return items[:cap], True
            if not token or not page:  # an empty page with a token would loop for ever
                return items, False

    def _get(self, path: str, params: dict[str, Any], *, missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            with self._http.stream("GET", API + path, params=params) as response:
                body = self._bounded_body(response, path)
        except httpx.TransportError as exc:
            raise MlflowUnreachable(f"MLflow at {self.tracking_uri} did not answer {path}: {exc}") from None
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            code, message = _error_of(body)
            raise MlflowRequestFailed(path, response.status_code, code, message)
        try:
            answer = json.loads(body)
        except ValueError:
            raise MlflowUnexpectedAnswer(
                f"{path} answered {response.status_code} without JSON "
                f"(is {self.tracking_uri} an MLflow tracking server?)"
            ) from None
        if not isinstance(answer, dict):
            raise MlflowUnexpectedAnswer(f"{path} answered JSON that is not an object")
        return answer

    def _bounded_body(self, response: httpx.Response, path: str) -> bytes:
        """The answer's bytes, read in chunks and refused as soon as they pass ``max_answer_bytes``."""
        cap = self.limits.max_answer_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise MlflowAnswerTooLarge(f"{path} answered {declared} bytes, more than the cap of {cap}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > cap:
                raise MlflowAnswerTooLarge(f"{path} answered more than the cap of {cap} bytes")
        return bytes(body)

    @staticmethod
    def _parse(kind: type[M], item: Any, what: str) -> M:
        try:
            return kind.model_validate(item)
        except ValidationError as exc:
            raise MlflowUnexpectedAnswer(f"MLflow sent {what} this reader does not understand: {exc}") from None


def _error_of(body: bytes) -> tuple[str | None, str]:
    """MLflow's ``{"error_code", "message"}``, or the start of whatever else the server sent."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None, body[:200].decode("utf-8", "replace")
    if isinstance(answer, dict):
        return answer.get("error_code"), str(answer.get("message") or "")
    return None, str(answer)[:200]
