"""The past of a model (scope ``models:read``): an alias's moves, an environment's timeline, the model's timeline.

Each comes twice, as the other lists: ``*_page`` answers one page, the plain name iterates every
entry. A team that reads a model through a share sees its past from the moment the share began.
The state of a model at an instant is the ``as_of=`` of :class:`~registry_client.reads.ModelReads`.
"""

from __future__ import annotations

from registry_client.config import ApiBase
from registry_client.steps import Call, Items, as_model, pages, path, query
from registry_client.surface import endpoint, iterator
from registry_contract.history_views import AliasMovePublic, EnvironmentChangePublic, TimelineEntryPublic
from registry_contract.views import Page

_MOVES = as_model(Page[AliasMovePublic])
_CHANGES = as_model(Page[EnvironmentChangePublic])
_ENTRIES = as_model(Page[TimelineEntryPublic])


def _alias(team: str, name: str, alias: str, limit: int | None, cursor: str | None) -> Call[Page[AliasMovePublic]]:
    route = path("models", team, name, "aliases", alias, "history")
    return Call("query", "GET", route, _MOVES, query(limit=limit, cursor=cursor))


def _environment(
    team: str, name: str, environment: str, limit: int | None, cursor: str | None
) -> Call[Page[EnvironmentChangePublic]]:
    route = path("models", team, name, "environments", environment, "timeline")
    return Call("query", "GET", route, _CHANGES, query(limit=limit, cursor=cursor))


def _timeline(team: str, name: str, limit: int | None, cursor: str | None) -> Call[Page[TimelineEntryPublic]]:
    return Call("query", "GET", path("models", team, name, "timeline"), _ENTRIES, query(limit=limit, cursor=cursor))


class HistoryReads(ApiBase):
    """Who an alias named when, what ran in an environment when, and a model's timeline."""

    @endpoint
    def alias_history_page(
        self, team: str, name: str, alias: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Call[Page[AliasMovePublic]]:
        """One page of an alias's sets, moves and removals, oldest first."""
        return _alias(team, name, alias, limit, cursor)

    @iterator
    def alias_history(
        self, team: str, name: str, alias: str, *, page_size: int | None = None
    ) -> Items[AliasMovePublic]:
        """Every set, move and removal of an alias, oldest first (none for an alias never set)."""
        return pages(self.config.retry, lambda cursor: _alias(team, name, alias, page_size, cursor))

    @endpoint
    def environment_timeline_page(
        self, team: str, name: str, environment: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Call[Page[EnvironmentChangePublic]]:
        """One page of an environment's status changes across the model's versions, oldest first."""
        return _environment(team, name, environment, limit, cursor)

    @iterator
    def environment_timeline(
        self, team: str, name: str, environment: str, *, page_size: int | None = None
    ) -> Items[EnvironmentChangePublic]:
        """Every status change in an environment (which version, from what to what, when), oldest first."""
        return pages(self.config.retry, lambda cursor: _environment(team, name, environment, page_size, cursor))

    @endpoint
    def model_timeline_page(
        self, team: str, name: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Call[Page[TimelineEntryPublic]]:
        """One page of the model's timeline (alias moves, approvals, deletions, status changes), newest first."""
        return _timeline(team, name, limit, cursor)

    @iterator
    def model_timeline(self, team: str, name: str, *, page_size: int | None = None) -> Items[TimelineEntryPublic]:
        """The model's whole timeline, newest first."""
        return pages(self.config.retry, lambda cursor: _timeline(team, name, page_size, cursor))
