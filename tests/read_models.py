"""A query read model filled in memory with the documents registration writes, for unit tests of the reads.

Registration's in-memory repository handles real commands; its models and versions are copied
into a :class:`ReadModel` as they are (the read model keeps the same shapes), the way the
projection would hold them after applying the events.
"""

from __future__ import annotations

import copy
from typing import Any

from query.projection.model import ReadModel
from registration.handlers import Command, handle_commands
from registration.repository import InMemoryRepository
from shared.contract.documents import Document
from shared.contract.ids import version_id
from tests.factories import PRODUCER, register_event


class MemoryWorld:
    """Registration's in-memory repository and a read model that mirrors it on :meth:`sync`."""

    def __init__(self) -> None:
        self.repo = InMemoryRepository(writer="test")
        self.read_model = ReadModel()

    async def register(self, team: str, name: str, *versions: str, **fields: Any) -> None:
        """Register ``versions`` (default ``1.0.0``) of ``team/name`` and mirror the result."""
        commands = [Command(register_event(team, name, v, **fields), PRODUCER) for v in versions or ("1.0.0",)]
        outcomes = await handle_commands(commands, repo=self.repo, artifact_schemes=["s3"])
        assert not any(o.rejected for o in outcomes), [o.event.data for o in outcomes]
        self.sync()

    def share(self, team: str, name: str, reader: str) -> None:
        """Share ``team/name`` with ``reader`` (the fields registration's share sets)."""
        model = self.model(team, name)
        model["readers"] = sorted({*model["readers"], reader})
        self.sync()

    def model(self, team: str, name: str) -> Document:
        """``team/name`` as the repository holds it (change it, then :meth:`sync`)."""
        return next(m for m in self.repo.models.values() if (m["team"], m["name"]) == (team, name))

    def version(self, team: str, name: str, number: str) -> Document:
        """A version as the repository holds it (change it, then :meth:`sync`)."""
        return self.repo.versions[version_id(team, name, number)]

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
        """Copy every model and version into the read model and tell its subscribers what changed."""
        rm = self.read_model
        changed = {mid for mid, m in self.repo.models.items() if rm.models.get(mid) != m}
        for model_id, model in self.repo.models.items():
            rm.models[model_id] = copy.deepcopy(model)
            rm.by_name[(model["team"], model["name"])] = model_id
        before = rm.versions
        rm.versions, rm.version_owner, rm.children = {}, {}, {}
        for vid, version in self.repo.versions.items():
            doc = copy.deepcopy(version)
            rm.versions.setdefault(doc["model_id"], {})[vid] = doc
            rm.version_owner[vid] = doc["model_id"]
            if parent := doc.get("parent"):
                rm.children.setdefault(version_id(parent["team"], parent["name"], parent["version"]), set()).add(vid)
        changed |= {mid for mid in {*before, *rm.versions} if before.get(mid) != rm.versions.get(mid)}
        rm.notify(changed)
