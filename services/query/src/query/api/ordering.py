"""The read model's models in each list order, kept in step with it, so a page is a slice, not a sort.

Each order is a sorted list of unique keys (``created_key``, ``updated_key``, ``name_key``,
``feed_key``: the sort value then the id, see :mod:`shared.contract.sortkeys`), one for every model
and one per group a list narrows to (a team, a reader team, a former reader, a tag pair, a
deployment status or environment of any of its versions), so the
smallest group a request names is walked in order from a :mod:`bisect` position. Changed models
are noted by :meth:`ReadModel.subscribe` and re-filed lazily, before the next read; a rebuild of the
read model (every model changed at once) re-files everything in one sort.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from query.projection.model import ReadModel
from shared.contract.documents import Document

ORDERS = ("created_key", "updated_key", "name_key", "feed_key")
GROUPED = ("readers", "former_readers", "tag_pairs")  # list fields a list narrows to, one value each
Group = tuple[str, str] | None  # (field, value), or None for every model


class Filed(NamedTuple):
    """Where one model is filed: its key in each order and the groups it belongs to."""

    keys: tuple[str, ...]
    groups: frozenset[tuple[str, str]]


def filed(model: Document, versions: Iterable[Document]) -> Filed:
    """Where ``model`` belongs in the orders (run for every model on a load: kept lean).

    Besides its own fields' groups, a model is in ``("deployment", mark)`` for each
    :func:`deployment_marks` mark of its versions: a status or environment filter walks only them.
    """
    model_id = model["_id"]
    groups = [("team", model["team"])]
    for field in GROUPED:
        if values := model.get(field):
            groups += [(field, value) for value in values]
    groups += [("deployment", mark) for version in versions for mark in deployment_marks(version)]
    # Registration sets every key; a missing one still files the model once, first.
    fallback = f" {model_id}"
    get = model.get
    keys = (get("created_key") or fallback, get("updated_key") or fallback, get("name_key") or fallback)
    return Filed((*keys, get("feed_key") or fallback), frozenset(groups))


def owner_of(key: str) -> str:
    """The model id a sort key ends with (each is ``<value> <id>``, see :mod:`shared.contract.sortkeys`)."""
    return key.rpartition(" ")[2]


class ModelOrders:
    """Every model of a :class:`ReadModel` in each order of :data:`ORDERS`, whole and by group.

    Which models each group holds is kept for every group; a group's keys in one order are
    sorted the first time a list asks for them and kept in step from then on, so only the orders
    and groups that lists use cost memory and upkeep.
    """

    def __init__(self, read_model: ReadModel) -> None:
        self._read_model = read_model
        self._filed: dict[str, Filed] = {}
        self._members: dict[tuple[str, str], set[str]] = {}
        self._lists: dict[tuple[Group, int], list[str]] = {}  # (group, order's position) -> ascending keys
        self._changed: set[str] = set()
        self._rebuild = True
        read_model.subscribe(self.changed)

    def changed(self, model_ids: set[str]) -> None:
        """Note models to re-file before the next read (a :meth:`ReadModel.subscribe` callback)."""
        if len(model_ids) >= max(len(self._read_model.models), 1):
            self._rebuild, self._changed = True, set()  # everything (a load or a rebuild): one pass
        elif not self._rebuild:
            self._changed |= model_ids

    def keys(self, group: Group, order: str) -> list[str]:
        """The keys of ``group``'s models in ``order``, ascending (read only, valid until the next change)."""
        self._catch_up()
        slot = (group, ORDERS.index(order))
        found = self._lists.get(slot)
        if found is None:
            position = slot[1]
            members = self._filed if group is None else self._members.get(group, set())
            found = self._lists[slot] = sorted(self._filed[mid].keys[position] for mid in members)
        return found

    def holds(self, group: tuple[str, str], model_id: str) -> bool:
        """Whether ``group`` holds the model ``model_id``."""
        self._catch_up()
        return model_id in self._members.get(group, ())

    def size(self, group: Group) -> int:
        """How many models ``group`` holds."""
        self._catch_up()
        return len(self._filed) if group is None else len(self._members.get(group, ()))

    def walk(
        self, group: Group, order: str, *, after: str | None, before: str | None, descending: bool
    ) -> Iterator[tuple[str, Document]]:
        """``(key, model)`` of ``group`` with ``after < key < before``, in ``order`` (or reversed)."""
        keys, models = self.keys(group, order), self._read_model.models
        start = 0 if after is None else bisect_left(keys, after)
        if start < len(keys) and after is not None and keys[start] == after:
            start += 1
        end = len(keys) if before is None else bisect_left(keys, before)
        positions = range(end - 1, start - 1, -1) if descending else range(start, end)
        for position in positions:
            key = keys[position]
            found = models.get(owner_of(key))
            if found is not None:
                yield key, found

    def _catch_up(self) -> None:
        if self._rebuild:
            self._rebuild, self._changed = False, set()
            versions = self._read_model.versions
            self._filed = {
                model_id: filed(model, versions.get(model_id, {}).values())
                for model_id, model in self._read_model.models.items()
            }
            self._members, self._lists = {}, {}
            for model_id, where in self._filed.items():
                for group in where.groups:
                    self._members.setdefault(group, set()).add(model_id)
        elif self._changed:
            changed, self._changed = self._changed, set()
            for model_id in changed:
                self._refile(model_id)

    def _refile(self, model_id: str) -> None:
        old = self._filed.pop(model_id, None)
        model = self._read_model.models.get(model_id)
        new = filed(model, self._read_model.versions.get(model_id, {}).values()) if model is not None else None
        if new is not None:
            self._filed[model_id] = new
        if old == new:
            return
        if old is not None:
            for group in old.groups:
                members = self._members[group]
                members.discard(model_id)
                if not members:
                    del self._members[group]
            self._file(old, remove=True)
        if new is not None:
            for group in new.groups:
                self._members.setdefault(group, set()).add(model_id)
            self._file(new, remove=False)

    def _file(self, where: Filed, *, remove: bool) -> None:
        """Take ``where``'s keys out of (or put them into) the sorted lists made so far."""
        for group in (None, *where.groups):
            for position, key in enumerate(where.keys):
                keys = self._lists.get((group, position))
                if keys is None:
                    continue
                if not remove:
                    insort(keys, key)
                    continue
                _remove(keys, key)
                if group is not None and not keys:
                    del self._lists[(group, position)]  # a group gone empty


def _remove(keys: list[str], key: str) -> None:
    position = bisect_left(keys, key)
    if position < len(keys) and keys[position] == key:
        del keys[position]


class VersionOrders:
    """Each model's versions in the orders lists need, worked out once per change of the model."""

    def __init__(self, read_model: ReadModel) -> None:
        self._read_model = read_model
        self._by_precedence: dict[str, tuple[list[str], list[Document]]] = {}
        self._by_registration: dict[str, list[Document]] = {}
        self._reports: dict[str, dict[str, list[Document]]] = {}
        self._received: dict[str, list[Document]] = {}
        read_model.subscribe(self.changed)

    def changed(self, model_ids: set[str]) -> None:
        """Forget what was worked out for these models (a :meth:`ReadModel.subscribe` callback)."""
        caches: list[dict[str, Any]] = [
            self._by_precedence,
            self._by_registration,
            self._reports,
            self._received,
        ]
        for cache in caches:
            if len(model_ids) >= len(cache):
                cache.clear()
            else:
                for model_id in model_ids:
                    cache.pop(model_id, None)

    def by_precedence(self, model_id: str) -> tuple[list[str], list[Document]]:
        """The model's versions (not deleted) and their ``version_key``s, lowest precedence first."""
        found = self._by_precedence.get(model_id)
        if found is None:
            versions = self._read_model.sorted_versions(model_id)[::-1]
            found = self._by_precedence[model_id] = ([str(v["version_key"]) for v in versions], versions)
        return found

    def by_registration(self, model_id: str) -> list[Document]:
        """The model's versions (not deleted), most recently registered first."""
        found = self._by_registration.get(model_id)
        if found is None:
            versions = self.by_precedence(model_id)[1]
            found = self._by_registration[model_id] = sorted(versions, key=_registered, reverse=True)
        return found

    def reports_of(self, model_id: str, version_id: str) -> list[Document]:
        """A version's deployment reports by ``position`` (its own history's), oldest first."""
        found = self._reports.get(model_id)
        if found is None:
            found = {}
            for row in self._read_model.reports.get(model_id, []):
                found.setdefault(str(row.get("version_id")), []).append(row)
            for rows in found.values():
                rows.sort(key=_position)
            self._reports[model_id] = found
        return found.get(version_id, [])

    def reports_by_receipt(self, model_id: str) -> list[Document]:
        """A model's deployment reports across its versions, most recently received first."""
        found = self._received.get(model_id)
        if found is None:
            rows = self._read_model.reports.get(model_id, [])
            found = self._received[model_id] = sorted(
                rows, key=lambda row: moment(row.get("received_at")), reverse=True
            )
        return found


def deployment_marks(version: Document) -> set[str]:
    """``status=<s>`` of the version overall, ``env=<e>`` and ``env=<e>:<s>`` of each environment reported."""
    if version.get("deleted"):
        return set()
    marks = {f"status={version.get('status') or 'registered'}"}
    for environment, state in (version.get("environments") or {}).items():
        marks.add(f"env={environment}")
        if isinstance(state, dict) and state.get("status"):
            marks.add(f"env={environment}:{state['status']}")
    return marks


def wanted_mark(status: str | None, environment: str | None) -> str | None:
    """The mark a version needs for a ``status``/``environment`` filter (``None``: no filter)."""
    if environment:
        return f"env={environment}:{status}" if status else f"env={environment}"
    return f"status={status}" if status else None


def moment(value: object) -> float:
    """A stored time as seconds since the epoch, for ordering (naive times are UTC; none is the epoch)."""
    if not isinstance(value, datetime):
        return 0.0
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _registered(version: Document) -> tuple[float, str]:
    return moment(version.get("created_at")), str(version.get("version_key") or "")


def _position(row: Document) -> int:
    return int(row.get("position") or 0)
