"""What one caller may read: models and versions outside its visibility answer as missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from query.api.past import PastStates
from query.api.reads import Reads
from query.projection.past import Since, access_began, every
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.ids import model_id, version_doc_id
from registry_contract.versioning import precedence_key
from shared.chassis.problems import Problem

VisibleTo = Callable[[Principal], dict[str, Any]]


def not_found(what: str) -> Problem:
    """The one answer for what does not exist and for what the caller may not see."""
    return Problem("not_found", f"{what} does not exist or is not visible to you")


@dataclass(frozen=True)
class Lookup:
    """The reads of one caller; ``visible`` is its visibility (``{}``, or ``{"readers": team}``).

    ``past`` keeps the scratch reads of as-of requests. An as-of Lookup (:meth:`as_of`) reads a
    scratch read model with the caller's visibility, and keeps the present one as ``live``: where
    the caller's access began is a matter of now.
    """

    reads: Reads
    visible: dict[str, Any]
    past: PastStates
    live: Lookup | None = None

    def shown(self, model: Document | None, what: str) -> Document:
        """``model`` if the caller may see it, else the not-found problem."""
        # A model the caller may not see is answered exactly like one that does not exist: same
        # status and body, and no access event or counter either, since the caller can read its
        # own team's audit log and anyone can read /metrics: either would tell the two apart.
        if model is not None and matches(model, self.visible):
            return model
        raise not_found(what)

    async def model(self, team: str, name: str) -> Document:
        """A visible model by team and name."""
        return self.shown(await self.reads.model(team, name), f"model {team}/{name}")

    def since(self, model: Document) -> Since | None:
        """Where the caller's view of the model's past begins: ``None`` (all of it) for its team and admins.

        A team that reads the model through a share sees its past from the ``model_shared`` event
        that opened its current access on.
        """
        team = self.visible.get("readers")
        if team is None or team == model["team"]:
            return None
        present = (self.live or self).reads.read_model
        return access_began(present.history.get(model["_id"], []), str(team))

    def reports_after(self, model: Document) -> Callable[[Document], bool]:
        """Which of ``model``'s deployment reports the caller may see.

        Every one for its team and admins; for a team reading it through a share, those the
        tracker recorded (``received_at``) since its current access began (:meth:`since`).
        """
        since = self.since(model)
        return every if since is None else since.received

    async def as_of(self, team: str, name: str, at: datetime | None) -> Lookup:
        """The caller's reads of ``team/name`` as they stood at ``at`` (these reads for no time or a future one).

        The model must be visible now; a time before the caller's access began answers as missing,
        and so does a model or version that did not exist then.
        """
        if at is None:
            return self
        model = await self.model(team, name)
        since = self.since(model)
        if since is not None and at < since.at:
            raise not_found(f"model {team}/{name}")
        if at >= datetime.now(UTC):
            return self
        return Lookup(self.past.reads_at(str(model["_id"]), at), self.visible, self.past, live=self)

    async def model_by_id(self, model_id: str) -> Document:
        """A visible model by its stable id."""
        return self.shown(await self.reads.model_by_id(model_id), f"model {model_id}")

    async def version(
        self, team: str, name: str, version: str, *, include_prerelease: bool = False, include_deprecated: bool = False
    ) -> Document:
        """A version of a visible model, with the aliases that point at it.

        ``version`` is a SemVer version, ``@alias``, or ``latest``: the highest non-prerelease
        active version (prereleases and deprecated versions count too when asked for).
        """
        if version == "latest":
            model = await self.model(team, name)
            found = await self.reads.latest_version(
                model, include_prerelease=include_prerelease, include_deprecated=include_deprecated
            )
            if found is None:
                raise not_found(f"a latest version of {team}/{name}")
            return with_aliases(found, model)
        if version.startswith("@"):
            model = await self.model(team, name)
            target = (model.get("aliases") or {}).get(version[1:])
            if target is None:
                raise not_found(f"alias {version[1:]} of {team}/{name}")
            version = target
        try:
            key = precedence_key(version)
        except ValueError:
            raise Problem("invalid", f"{version!r} is not a SemVer 2.0 version, @alias or 'latest'") from None
        model = self.shown(await self.reads.model(team, name), f"model {team}/{name}")
        found = await self.reads.version_by_id(version_doc_id(model_id(team, name), key))
        if found is None or found["model_id"] != model["_id"]:
            raise not_found(f"version {version} of {team}/{name}")
        return with_aliases(found, model)


def with_aliases(version: Document, model: Document) -> Document:
    """``version`` with the names of the model's aliases that point at it."""
    aliases = sorted(alias for alias, target in (model.get("aliases") or {}).items() if target == version["version"])
    return version | {"aliases": aliases}


def matches(doc: Document, visible: dict[str, Any]) -> bool:
    """Whether ``doc`` is inside the caller's visibility filter (simple equality/``$in`` forms)."""
    for key, condition in visible.items():
        value = doc.get(key)
        values = value if isinstance(value, list) else [value]
        if condition not in values:
            return False
    return True
