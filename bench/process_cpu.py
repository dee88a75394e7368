"""CPU time of each process of the embedded stack: where a benchmark's work went, per unit of work.

Each stack process starts a session of its own, so a process's CPU is summed over its group
(the broker's and MongoDB's worker threads, a service's native threads such as the search
index's, included). The stack's processes share this machine's cores: the sum per unit bounds
how many units per second the whole stack can do here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from rich.table import Table

from registry_cli.processes import group_members
from registry_cli.stack import EmbeddedStack

TICKS = os.sysconf("SC_CLK_TCK")


def stack_groups(stack: EmbeddedStack) -> dict[str, int]:
    """Each process of the stack by name: the four services, the broker and the MongoDB servers."""
    children = [*stack.services.values(), stack.kafka, stack.mongo, stack.audit_mongo]
    return {child.name: child.process.pid for child in children if child and child.process}


def group_cpu_seconds(group: int) -> float:
    """User and system CPU seconds of a process group's live members so far."""
    total = 0
    for pid in group_members(group):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


def cpu_seconds(stack: EmbeddedStack) -> dict[str, float]:
    """CPU seconds so far of each process of the stack (read it before and after a phase)."""
    return {name: group_cpu_seconds(group) for name, group in stack_groups(stack).items()}


def per_unit_ms(before: dict[str, float], after: dict[str, float], units: int) -> dict[str, float]:
    """CPU milliseconds each process spent per unit of work between two readings."""
    return {name: (after[name] - before.get(name, 0.0)) * 1000 / max(units, 1) for name in after}


def cpu_text(per_unit: dict[str, float]) -> str:
    """The total CPU ms per unit, then each process's part, largest first."""
    parts = ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(per_unit.items(), key=lambda kv: -kv[1]))
    return f"{sum(per_unit.values()):.1f} ({parts})"


def add_cpu_row(table: Table, label: str, per_unit: dict[str, float]) -> None:
    """A row of a (measure, result, target) table: :func:`cpu_text`, no target."""
    table.add_row(label, cpu_text(per_unit), "")


async def until_quiet(
    stack: EmbeddedStack, *, busy_below: float = 0.35, window: float = 2.0, timeout: float = 900
) -> float:
    """Wait until the whole stack used under ``busy_below`` of a core for ``window`` s; return the seconds waited.

    After a bulk load the services go on digesting it (the query indexes it for search and writes
    its read model behind); a read measured then measures that work as much as the read.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = sum(cpu_seconds(stack).values())
        await asyncio.sleep(window)
        if sum(cpu_seconds(stack).values()) - before < busy_below * window:
            break
    return time.monotonic() - started
