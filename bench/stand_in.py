"""What the embedded MongoDB stand-in can do at most, and how much a workload asks of it.

The registry's write paths are bounded by SecantusDB (pure Python over WiredTiger),
not by the services: a benchmark that only printed its own rate could not say whether a figure
is the code's or the stand-in's. So the write benchmarks measure, in the same run and on the
same server,

- the stand-in's ceiling: bulk inserts and bulk updates of small documents, documents/s;
- the documents a workload wrote, by collection and operation, read back from the server's
  oplog (one oplog entry per document inserted, updated or deleted, as on mongod);

and from the two, the rate the stand-in would allow for that workload if it did nothing but
those writes (:func:`bound_per_s`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bson import Timestamp
from pymongo import AsyncMongoClient, InsertOne, UpdateOne
from rich.table import Table

from registry_cli.database_users import service_database

SERVICE_DATABASES = frozenset(service_database(name) for name in ("registration", "query", "deploy-tracker", "audit"))

OPS = {"i": "insert", "u": "update", "d": "delete"}


@dataclass(frozen=True)
class Ceiling:
    """The stand-in's bulk write rates, documents/s."""

    inserts_per_s: float
    updates_per_s: float


@dataclass(frozen=True)
class Writes:
    """Documents written between two oplog positions: (collection, operation) → count."""

    counts: Counter[tuple[str, str]]

    def total(self, operation: str | None = None) -> int:
        return sum(n for (_, op), n in self.counts.items() if operation in (None, op))

    def per(self, units: int) -> str:
        """``"5.0 (models u 1.0, …)"``: documents written per unit of work, by collection."""
        parts = ", ".join(
            f"{coll} {op[0]} {n / units:.1f}" for (coll, op), n in sorted(self.counts.items(), key=lambda kv: -kv[1])
        )
        return f"{self.total() / units:.1f} ({parts})"


async def oplog_position(uri: str) -> Timestamp:
    """The timestamp of the newest oplog entry (writes after it are the workload's)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        newest = await client.local["oplog.rs"].find({}, {"ts": 1}).sort("$natural", -1).limit(1).to_list()
        return newest[0]["ts"] if newest else Timestamp(0, 0)
    finally:
        await client.close()


async def writes_since(uri: str, since: Timestamp) -> Writes:
    """The documents the services wrote to the server after ``since``, by database.collection and operation.

    Every service database on the server counts (the shared server holds registration's, the
    query's and the tracker's): that is the server's load. A transaction's writes may be logged
    as one ``applyOps`` entry (mongod) or one entry each (SecantusDB); both are counted per document.
    """
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    counts: Counter[tuple[str, str]] = Counter()
    try:
        async for entry in client.local["oplog.rs"].find({"ts": {"$gt": since}}, {"op": 1, "ns": 1, "o": 1}):
            for op, ns in _documents(entry):
                db, _, coll = ns.partition(".")
                if db in SERVICE_DATABASES and op in OPS:
                    counts[(f"{db}.{coll}", OPS[op])] += 1
    finally:
        await client.close()
    return Writes(counts)


def _documents(entry: dict[str, Any]) -> list[tuple[str, str]]:
    if entry.get("op") == "c" and isinstance(entry.get("o"), dict) and "applyOps" in entry["o"]:
        return [(inner.get("op", ""), inner.get("ns", "")) for inner in entry["o"]["applyOps"]]
    return [(entry.get("op", ""), entry.get("ns", ""))]


async def measure_ceiling(uri: str, documents: int = 5_000) -> Ceiling:
    """Bulk insert then bulk update ``documents`` small documents, 500 a batch, in a scratch database.

    The scratch collection has four secondary indexes, the median among the registry's written
    collections (audit log 5, versions 4, deployment history 3, outboxes 1 to 3, models 12): the
    stand-in writes every index entry of a document on insert and re-writes them all on update.
    """
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    scratch = client["bench_scratch"]["docs"]
    try:
        for keys in (["team", "n"], ["key"], ["team", "key"], ["at"]):
            await scratch.create_index([(field, 1) for field in keys])
        docs = [
            {"_id": f"d{i}", "team": f"t{i % 20}", "n": i, "key": f"k{i:08d}", "at": i // 7, "pad": "x" * 400}
            for i in range(documents)
        ]
        started = time.perf_counter()
        for at in range(0, documents, 500):
            await scratch.bulk_write([InsertOne(d) for d in docs[at : at + 500]], ordered=False)
        inserts = documents / (time.perf_counter() - started)
        started = time.perf_counter()
        for at in range(0, documents, 500):
            await scratch.bulk_write(
                [UpdateOne({"_id": f"d{i}"}, {"$set": {"at": -i}}) for i in range(at, min(at + 500, documents))],
                ordered=False,
            )
        updates = documents / (time.perf_counter() - started)
        return Ceiling(inserts, updates)
    finally:
        await client.drop_database("bench_scratch")
        await client.close()


def bound_per_s(writes: Writes, units: int, ceiling: Ceiling) -> float:
    """Units of work per second the stand-in allows if it only did these writes at its ceiling rates."""
    seconds = (writes.total("insert") / ceiling.inserts_per_s) + (
        (writes.total("update") + writes.total("delete")) / ceiling.updates_per_s
    )
    return units / seconds if seconds else float("inf")


async def settled_writes(uri: str, since: Timestamp, *, quiet_seconds: float = 1.0, at_most: float = 60) -> Writes:
    """:func:`writes_since` once the server has written nothing more for ``quiet_seconds`` (consumers caught up)."""
    deadline = time.monotonic() + at_most
    writes = await writes_since(uri, since)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_seconds)
        later = await writes_since(uri, since)
        if later.total() == writes.total():
            return later
        writes = later
    return writes


def add_stand_in_rows(
    table: Table, writes: dict[str, Writes], ceilings: dict[str, Ceiling], units: int, unit: str, plural: str
) -> None:
    """Each stand-in server's ceilings, the documents one ``unit`` wrote there, and the rate that allows."""
    for name, written in writes.items():
        ceiling = ceilings[name]
        table.add_row(
            f"stand-in ({name} server) bulk insert / update ceiling, documents/s",
            f"{ceiling.inserts_per_s:.0f} / {ceiling.updates_per_s:.0f}",
            "",
        )
        table.add_row(f"documents written per {unit} on the {name} server", written.per(units), "")
        table.add_row(
            f"{plural}/s the {name} server allows at those ceilings", f"{bound_per_s(written, units, ceiling):.0f}", ""
        )
