"""The read model's models in each list order, kept in step with it, so a page is a slice, not a sort.

Each order is a sorted list of unique keys (``created_key``, ``updated_key``, ``name_key``,
``feed_key``: the sort value then the id, see :mod:`registry_contract.sortkeys`), one for every model
and one per group a list narrows to (a team, a reader team, a former reader, a tag pair, a
deployment status or environment of any of its versions), so the
smallest group a request names is walked in order from a :mod:`bisect` position. Changed models
are noted by :meth:`ReadModel.subscribe` and re-filed lazily, before the next read; a rebuild of the
read model (every model changed at once) re-files everything in one sort.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from itertools import takewhile
from typing import NamedTuple

from query.projection.model import ReadModel
from registry_contract.documents import Document
from registry_contract.times import as_utc

ORDERS = ("created_key", "updated_key", "name_key", "feed_key")
RESORT_AFTER = 64  # ids gained at once past which a model's version list is sorted afresh
GROUPED = ("readers", "former_readers", "tag_pairs")  # list fields a list narrows to, one value each
Group = tuple[str, str] | None  # (field, value), or None for every model


class Filed(NamedTuple):
    """Where one model is filed: its key in each order and the groups it belongs to."""

    keys: tuple[str, ...]
    groups: frozenset[tuple[str, str]]


def filed(model: Document) -> Filed:
    """Where ``model`` belongs in the orders by its own fields (run for every model on a load: kept lean)."""
    model_id = model["_id"]
    groups = [("team", model["team"])]
    for field in GROUPED:
        if values := model.get(field):
            groups += [(field, value) for value in values]
    # Registration sets every key; a missing one still files the model once, first.
    fallback = f" {model_id}"
    get = model.get
    keys = (get("created_key") or fallback, get("updated_key") or fallback, get("name_key") or fallback)
    return Filed((*keys, get("feed_key") or fallback), frozenset(groups))


def deployment_groups(versions: Iterable[Document]) -> frozenset[tuple[str, str]]:
    """The ``("deployment", mark)`` groups a model is in: one per :func:`deployment_marks` mark of its versions."""
    return frozenset(("deployment", mark) for version in versions for mark in deployment_marks(version))


def owner_of(key: str) -> str:
    """The model id a sort key ends with (each is ``<value> <id>``, see :mod:`registry_contract.sortkeys`)."""
    return key.rpartition(" ")[2]


class ModelOrders:
    """Every model of a :class:`ReadModel` in each order of :data:`ORDERS`, whole and by group.

    Which models each group holds is kept for every group; a group's keys in one order are
    sorted the first time a list asks for them and kept in step from then on, so only the orders
    and groups that lists use cost memory and upkeep. The deployment groups (a status or an
    environment of any version) are worked out from the versions only when a list asks for one,
    and then only for the models changed since: a registration into a large model costs nothing
    until a list filters on deployment.
    """

    def __init__(self, read_model: ReadModel) -> None:
        self._read_model = read_model
        self._filed: dict[str, Filed] = {}  # by the model's own fields
        self._marked: dict[str, Filed] = {}  # in the deployment groups, at the keys it had then
        self._members: dict[tuple[str, str], set[str]] = {}
        self._lists: dict[tuple[Group, int], list[str]] = {}  # (group, order's position) -> ascending keys
        self._changed: set[str] = set()
        self._unmarked: set[str] = set()  # models whose deployment groups may be out of date
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
        self._catch_up(group)
        slot = (group, ORDERS.index(order))
        found = self._lists.get(slot)
        if found is None:
            position = slot[1]
            members = self._filed if group is None else self._members.get(group, set())
            found = self._lists[slot] = sorted(self._filed[mid].keys[position] for mid in members)
        return found

    def holds(self, group: tuple[str, str], model_id: str) -> bool:
        """Whether ``group`` holds the model ``model_id``."""
        self._catch_up(group)
        return model_id in self._members.get(group, ())

    def size(self, group: Group) -> int:
        """How many models ``group`` holds."""
        self._catch_up(group)
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

    def _catch_up(self, group: Group) -> None:
        if self._rebuild:
            self._rebuild, self._changed = False, set()
            self._filed = {model_id: filed(model) for model_id, model in self._read_model.models.items()}
            self._marked, self._members, self._lists = {}, {}, {}
            self._unmarked = set(self._filed)
            for model_id, where in self._filed.items():
                for member_of in where.groups:
                    self._members.setdefault(member_of, set()).add(model_id)
        elif self._changed:
            changed, self._changed = self._changed, set()
            for model_id in changed:
                old = self._filed.pop(model_id, None)
                model = self._read_model.models.get(model_id)
                new = filed(model) if model is not None else None
                if new is not None:
                    self._filed[model_id] = new
                self._move(model_id, old, new, everyone=True)
            self._unmarked |= changed
        if group is not None and group[0] == "deployment" and self._unmarked:
            unmarked, self._unmarked = self._unmarked, set()
            for model_id in unmarked:
                self._mark(model_id)

    def _mark(self, model_id: str) -> None:
        """File the model in the deployment groups of its versions as they are now."""
        old = self._marked.pop(model_id, None)
        where = self._filed.get(model_id)
        marked: Filed | None = None
        if where is not None:
            marked = Filed(where.keys, deployment_groups(self._read_model.versions.get(model_id, {}).values()))
            self._marked[model_id] = marked
        self._move(model_id, old, marked, everyone=False)

    def _move(self, model_id: str, old: Filed | None, new: Filed | None, *, everyone: bool) -> None:
        """File the model where ``new`` says instead of where ``old`` did (``everyone``: in the whole lists too)."""
        if old == new:
            return
        if old is not None:
            for group in old.groups:
                members = self._members[group]
                members.discard(model_id)
                if not members:
                    del self._members[group]
            self._file(old, remove=True, everyone=everyone)
        if new is not None:
            for group in new.groups:
                self._members.setdefault(group, set()).add(model_id)
            self._file(new, remove=False, everyone=everyone)

    def _file(self, where: Filed, *, remove: bool, everyone: bool) -> None:
        """Take ``where``'s keys out of (or put them into) the sorted lists made so far."""
        for group in (None, *where.groups) if everyone else where.groups:
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
    """Each model's versions in the orders lists need, kept in step with the changes of the model.

    A model's version ids (``<model id>:<precedence key>``, so their order is SemVer precedence)
    stay sorted: after a change, the ids the model gained are put in place and the list is sorted
    afresh only when some went away (or many came at once), so a registration costs neither a
    sort nor a scan of a large model's every version.
    """

    def __init__(self, read_model: ReadModel) -> None:
        self._read_model = read_model
        self._sorted: dict[str, tuple[list[str], set[str]]] = {}  # model id -> (ids ascending, the same ids)
        self._stale: set[str] = set()
        self._reports: dict[str, dict[str, list[Document]]] = {}
        self._received: dict[str, list[Document]] = {}
        read_model.subscribe(self.changed)

    def changed(self, model_ids: set[str]) -> None:
        """Note what changed in these models (a :meth:`ReadModel.subscribe` callback)."""
        if len(model_ids) >= len(self._read_model.models):
            self._sorted.clear()  # a load or a rebuild: every dict is new
        self._stale |= model_ids & self._sorted.keys()
        for cache in (self._reports, self._received):
            if len(model_ids) >= len(cache):
                cache.clear()
            else:
                for model_id in model_ids:
                    cache.pop(model_id, None)

    def precedence(self, model_id: str) -> list[str]:
        """The model's version ids, lowest precedence first (read only, valid until the next change)."""
        current = self._read_model.versions.get(model_id, {})
        entry = self._sorted.get(model_id)
        if entry is not None and model_id in self._stale:
            self._stale.discard(model_id)
            ids, members = entry
            # Versions join the read model's dict at its end (and leave it by deletion), so the
            # newcomers are its last keys; anything else shows as a count that does not add up.
            added = list(takewhile(lambda vid: vid not in members, reversed(current)))
            if len(ids) + len(added) != len(current) or len(added) > RESORT_AFTER:
                entry = None  # some went away, or many came: sort afresh
            else:
                for vid in added:
                    insort(ids, vid)
                members.update(added)
        if entry is None:
            ids = sorted(current)
            entry = self._sorted[model_id] = (ids, set(ids))
        return entry[0]

    def version(self, model_id: str, version_id: str) -> Document | None:
        """A version of the model, unless unknown or deleted."""
        found = self._read_model.versions.get(model_id, {}).get(version_id)
        return None if found is None or found.get("deleted") else found

    def newest(self, model_id: str, count: int | None = None) -> list[Document]:
        """The model's versions, highest precedence first (the first ``count`` of them)."""
        found: list[Document] = []
        for version_id in reversed(self.precedence(model_id)):
            if count is not None and len(found) == count:
                break
            if (version := self.version(model_id, version_id)) is not None:
                found.append(version)
        return found

    def by_registration(self, model_id: str, count: int) -> list[Document]:
        """The model's ``count`` most recently registered versions, newest first."""
        versions = (v for v in self._read_model.versions.get(model_id, {}).values() if not v.get("deleted"))
        return heapq.nlargest(count, versions, key=_registered)

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
    found = as_utc(value)
    return 0.0 if found is None else found.timestamp()


def _registered(version: Document) -> tuple[float, str]:
    return moment(version.get("created_at")), str(version.get("version_key") or "")


def _position(row: Document) -> int:
    return int(row.get("position") or 0)
