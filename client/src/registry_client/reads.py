"""The query service's reads: models, versions, history, aliases, shares, lineage, deployments, ``/v1/meta``.

Lists come twice: ``*_page`` answers one page (keep its ``next_cursor`` to continue later), the
plural noun iterates every item, following ``next_cursor`` page after page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, TypedDict, Unpack

from registry_client.config import ApiBase
from registry_client.steps import Call, Items, as_model, pages, path, query
from registry_client.surface import endpoint, iterator
from registry_contract.compare_views import VersionComparison
from registry_contract.read_views import AliasesPublic, LineagePublic, Meta, SharesPublic
from registry_contract.views import (
    DeploymentReportPublic,
    ModelEventPublic,
    ModelPublic,
    ModelVersionPublic,
    Page,
    VersionDeployments,
)

Lifecycle = Literal["active", "deprecated", "archived"]


class CatalogFilters(TypedDict, total=False):
    """The filters the model list and the search share."""

    team: str
    framework: str
    status: str
    environment: str
    deployment_target: str
    tags: Mapping[str, str] | Sequence[str]
    name_prefix: str


class ModelFilters(CatalogFilters, total=False):
    """Filters of the model list; they combine.

    ``framework``, ``deployment_target`` and ``tags`` match the model's headline version;
    ``status``/``environment`` match models with any version so deployed; ``sort`` is one of
    ``created_at``, ``updated_at``, ``name``, ``-`` first for descending (default ``-created_at``).
    """

    created_after: datetime
    created_before: datetime
    sort: str


class VersionFilters(TypedDict, total=False):
    """Filters of a model's version list (newest SemVer precedence first).

    ``version_range`` is a SemVer range such as ``>=1.2.0,<2.0.0``; prereleases are left out
    unless ``include_prerelease``. ``as_of`` (an aware datetime) lists them as they stood then.
    """

    version_range: str
    include_prerelease: bool
    status: str
    environment: str
    lifecycle: Lifecycle
    as_of: datetime


_MODEL_PAGE = as_model(Page[ModelPublic])
_VERSION_PAGE = as_model(Page[ModelVersionPublic])
_EVENT_PAGE = as_model(Page[ModelEventPublic])


def _models(limit: int | None, cursor: str | None, filters: ModelFilters) -> Call[Page[ModelPublic]]:
    return Call("query", "GET", path("models"), _MODEL_PAGE, query(**filters, limit=limit, cursor=cursor))


def _team_models(team: str, sort: str | None, limit: int | None, cursor: str | None) -> Call[Page[ModelPublic]]:
    params = query(sort=sort, limit=limit, cursor=cursor)
    return Call("query", "GET", path("teams", team, "models"), _MODEL_PAGE, params)


def _versions(
    team: str, name: str, limit: int | None, cursor: str | None, filters: VersionFilters
) -> Call[Page[ModelVersionPublic]]:
    params = query(**filters, limit=limit, cursor=cursor)
    return Call("query", "GET", path("models", team, name, "versions"), _VERSION_PAGE, params)


def _history(team: str, name: str, limit: int | None, cursor: str | None) -> Call[Page[ModelEventPublic]]:
    params = query(limit=limit, cursor=cursor)
    return Call("query", "GET", path("models", team, name, "history"), _EVENT_PAGE, params)


def _deployments(
    team: str, name: str, version: str, limit: int | None, cursor: str | None, as_of: datetime | None = None
) -> Call[VersionDeployments]:
    route = path("models", team, name, "versions", version, "deployments")
    return Call("query", "GET", route, as_model(VersionDeployments), query(limit=limit, cursor=cursor, as_of=as_of))


class ModelReads(ApiBase):
    """Reads of the query service (scope ``models:read``): your team's models and those shared with it."""

    @endpoint
    def meta(self) -> Call[Meta]:
        """The contract's enumerations (frameworks, targets, statuses, sorts) and limits."""
        return Call("query", "GET", path("meta"), as_model(Meta))

    @endpoint
    def models_page(
        self, *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[ModelFilters]
    ) -> Call[Page[ModelPublic]]:
        """One page of the models you can read (``limit`` ≤ 200, default 50)."""
        return _models(limit, cursor, filters)

    @iterator
    def models(self, *, page_size: int | None = None, **filters: Unpack[ModelFilters]) -> Items[ModelPublic]:
        """Every model you can read that matches ``filters``."""
        return pages(self.config.retry, lambda cursor: _models(page_size, cursor, filters))

    @endpoint
    def team_models_page(
        self, team: str, *, sort: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Call[Page[ModelPublic]]:
        """One page of one team's models (those you can read)."""
        return _team_models(team, sort, limit, cursor)

    @iterator
    def team_models(self, team: str, *, sort: str | None = None, page_size: int | None = None) -> Items[ModelPublic]:
        """Every model of ``team`` you can read."""
        return pages(self.config.retry, lambda cursor: _team_models(team, sort, page_size, cursor))

    @endpoint
    def get_model(self, team: str, name: str, *, as_of: datetime | None = None) -> Call[ModelPublic]:
        """A model with its headline (latest) version's fields; :class:`NotFound` if you cannot read it.

        ``as_of`` (an aware datetime): the model as it stood then (:class:`NotFound` if it did not exist).
        """
        return Call("query", "GET", path("models", team, name), as_model(ModelPublic), query(as_of=as_of))

    @endpoint
    def get_model_by_id(self, model_id: str) -> Call[ModelPublic]:
        """A model by its stable ``model_id``."""
        return Call("query", "GET", path("models", "id", model_id), as_model(ModelPublic))

    @endpoint
    def history_page(
        self, team: str, name: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Call[Page[ModelEventPublic]]:
        """One page of a model's changes (its events), oldest first."""
        return _history(team, name, limit, cursor)

    @iterator
    def history(self, team: str, name: str, *, page_size: int | None = None) -> Items[ModelEventPublic]:
        """Every change of a model, oldest first."""
        return pages(self.config.retry, lambda cursor: _history(team, name, page_size, cursor))

    @endpoint
    def versions_page(
        self,
        team: str,
        name: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        **filters: Unpack[VersionFilters],
    ) -> Call[Page[ModelVersionPublic]]:
        """One page of a model's versions, newest SemVer precedence first."""
        return _versions(team, name, limit, cursor, filters)

    @iterator
    def versions(
        self, team: str, name: str, *, page_size: int | None = None, **filters: Unpack[VersionFilters]
    ) -> Items[ModelVersionPublic]:
        """Every version of a model matching ``filters``, newest SemVer precedence first."""
        return pages(self.config.retry, lambda cursor: _versions(team, name, page_size, cursor, filters))

    @endpoint
    def get_version(
        self,
        team: str,
        name: str,
        version: str = "latest",
        *,
        include_prerelease: bool | None = None,
        include_deprecated: bool | None = None,
        as_of: datetime | None = None,
    ) -> Call[ModelVersionPublic]:
        """A version: SemVer (``1.4.0``), ``latest`` (highest active stable one) or an alias (``@champion``).

        ``include_prerelease`` and ``include_deprecated`` widen what ``latest`` may be; ``as_of`` (an
        aware datetime) answers the version as it stood then, ``latest`` and ``@alias`` resolved then.
        """
        params = query(include_prerelease=include_prerelease, include_deprecated=include_deprecated, as_of=as_of)
        return Call(
            "query", "GET", path("models", team, name, "versions", version), as_model(ModelVersionPublic), params
        )

    @endpoint
    def list_aliases(self, team: str, name: str, *, as_of: datetime | None = None) -> Call[AliasesPublic]:
        """A model's aliases and the versions they point at (then, with an aware ``as_of``)."""
        route = path("models", team, name, "aliases")
        return Call("query", "GET", route, as_model(AliasesPublic), query(as_of=as_of))

    @endpoint
    def list_shares(self, team: str, name: str) -> Call[SharesPublic]:
        """The teams a model is shared with (its own team only may ask)."""
        return Call("query", "GET", path("models", team, name, "shares"), as_model(SharesPublic))

    @endpoint
    def get_lineage(self, team: str, name: str, version: str) -> Call[LineagePublic]:
        """Where a version came from (its parents, as far as you may read) and the versions derived from it."""
        route = path("models", team, name, "versions", version, "lineage")
        return Call("query", "GET", route, as_model(LineagePublic))

    @endpoint
    def compare_versions(self, team: str, name: str, versions: Sequence[str]) -> Call[VersionComparison]:
        """Versions side by side (2 to 10: SemVer, ``@alias`` or ``latest``), each after the first compared with it.

        The answer has each version's metrics, tags, parameters, lineage, approval and deployments,
        and per later version its metric deltas and what it added, removed or changed.
        """
        route = path("models", team, name, "compare")
        return Call("query", "GET", route, as_model(VersionComparison), query(versions=",".join(versions)))

    @endpoint
    def get_deployments(
        self,
        team: str,
        name: str,
        version: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        as_of: datetime | None = None,
    ) -> Call[VersionDeployments]:
        """Where a version stands per environment, with one page of its reports (oldest first).

        ``as_of`` (an aware datetime): where it stood then, and the reports recorded by then.
        """
        return _deployments(team, name, version, limit, cursor, as_of)

    @iterator
    def deployment_history(
        self, team: str, name: str, version: str, *, page_size: int | None = None, as_of: datetime | None = None
    ) -> Items[DeploymentReportPublic]:
        """Every deployment report of a version, oldest first (applied, out of order and rejected); by ``as_of``."""
        return pages(self.config.retry, lambda cursor: _deployments(team, name, version, page_size, cursor, as_of))
