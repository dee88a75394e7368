"""A query read model filled in memory by registration's events, for unit tests of the reads.

Registration's in-memory repository handles real commands, and the query's projection applies
their outcome events to a :class:`ReadModel`, as the query service would. Tests may then change
the read model's documents in place (a deployment, a lifecycle) and :meth:`MemoryWorld.sync`.
"""

from __future__ import annotations

import copy
from typing import Any

from query.projection.apply import apply_event
from query.projection.model import ReadModel
from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from registry_contract.documents import Document
from registry_contract.ids import version_id
from tests.factories import PRODUCER, register_event


class MemoryWorld:
    """Registration's in-memory repository and the read model its events build."""

    def __init__(self) -> None:
        self.repo = InMemoryRepository(writer="test")
        self.read_model = ReadModel()
        self._synced: dict[str, Any] = {}  # model id -> (model, versions) as subscribers last heard

    async def register(self, team: str, name: str, *versions: str, **fields: Any) -> None:
        """Register ``versions`` (default ``1.0.0``) of ``team/name`` and apply their events."""
        commands = [Command(register_event(team, name, v, **fields), PRODUCER) for v in versions or ("1.0.0",)]
        outcomes = await handle_commands(commands, repo=self.repo, artifact_schemes=["s3"])
        assert not any(o.rejected for o in outcomes), [o.event.data for o in outcomes]
        for outcome in outcomes:
            apply_event(self.read_model, outcome.event.model_copy(update={"revision": outcome.revision}))
        self.sync()

    def share(self, team: str, name: str, reader: str) -> None:
        """Let ``reader`` read ``team/name`` (the readers a share event gives the model)."""
        model = self.model(team, name)
        model["readers"] = sorted({*model["readers"], reader})
        self.sync()

    def model(self, team: str, name: str) -> Document:
        """``team/name`` as the read model holds it (change it, then :meth:`sync`)."""
        found = self.read_model.model_by_name(team, name)
        assert found is not None, f"{team}/{name} was never registered"
        return found

    def version(self, team: str, name: str, number: str) -> Document:
        """A version as the read model holds it (change it, then :meth:`sync`)."""
        found = self.read_model.version(version_id(team, name, number))
        assert found is not None, f"{team}/{name} has no version {number}"
        return found

    def forget_version(self, team: str, name: str, number: str) -> None:
        """Take a version out of the read model (subscribers hear of it at the next :meth:`sync`)."""
        vid = version_id(team, name, number)
        model_id = self.read_model.version_owner.pop(vid)
        del self.read_model.versions[model_id][vid]

    def add_report(self, team: str, name: str, number: str, **fields: Any) -> Document:
        """File a deployment report under a version, as the projection keeps it."""
        version = self.version(team, name, number)
        rows = self.read_model.reports.setdefault(version["model_id"], [])
        position = 1 + sum(1 for row in rows if row["version_id"] == version["_id"])
        row = {
            "_id": f"{version['_id']}:{position}",
            "model_id": version["model_id"],
            "version_id": version["_id"],
            "team": team,
            "name": name,
            "version": number,
            "position": position,
            **fields,
        }
        rows.append(row)
        self.read_model.notify({version["model_id"]})
        return row

    def sync(self) -> None:
        """Tell the read model's subscribers which models changed since they last heard."""
        rm = self.read_model
        now = {mid: copy.deepcopy((rm.models.get(mid), rm.versions.get(mid))) for mid in {*rm.models, *rm.versions}}
        changed = {mid for mid in {*now, *self._synced} if now.get(mid) != self._synced.get(mid)}
        self._synced = now
        rm.notify(changed)
