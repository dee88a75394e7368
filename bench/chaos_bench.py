"""Chaos: SIGKILL consuming services in a loop under load, restart them, count what was lost.

    .venv/bin/python bench/chaos_bench.py --seconds 600      # the 10-minute run of the closing note

A fresh embedded stack is loaded with registrations and deployment reports at ``--rate``/s
while a random consuming service (registration, audit, deploy-tracker) is killed every few
seconds and restarted by the stack's supervisor. Then the load stops, everything drains and
the table says what was sent, what came out, and what was lost or doubled (all should be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from tests.chaos import run_chaos
from tests.throwaway import throwaway_stack, unthrottled_admin_key

console = Console()


async def main(args: argparse.Namespace) -> None:
    async with throwaway_stack("registry-chaos-") as stack:
        token = await unthrottled_admin_key(stack, name="chaos")
        console.print(f"chaos for {args.seconds:.0f}s at {args.rate:g} commands/s …")
        report = await run_chaos(
            stack,
            token,
            seconds=args.seconds,
            rate=args.rate,
            kill_every=(args.kill_min, args.kill_max),
            say=lambda line: console.print(f"  supervisor: {line}") if args.verbose else None,
        )
    table = Table(title=f"Chaos: {args.seconds:.0f}s, SIGKILL every {args.kill_min:g}-{args.kill_max:g}s")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in (
        ("commands acknowledged by the broker", report.commands_sent),
        ("deploy reports acknowledged", report.reports_sent),
        ("with an outcome event", report.outcomes),
        ("lost (no outcome)", report.lost),
        ("doubled (two outcomes)", report.doubled),
        ("registered but not readable", report.not_readable),
        ("audit entries lost", report.audit_lost),
        ("audit entries doubled", report.audit_doubled),
        ("kills", ", ".join(f"{k} {v}" for k, v in sorted(report.kills.items())) or "0"),
        ("restarts by the supervisor", ", ".join(f"{k} {v}" for k, v in sorted(report.restarts.items())) or "0"),
        ("drain after the load stopped, s", f"{report.drain_seconds:.1f}"),
    ):
        table.add_row(label, str(value))
    console.print(table)
    console.print("[green]clean[/green]" if report.clean else "[red]NOT CLEAN[/red]")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20, help="registrations per second (and a report every 5th)")
    parser.add_argument("--kill-min", type=float, default=4)
    parser.add_argument("--kill-max", type=float, default=10)
    parser.add_argument("--verbose", action="store_true", help="print each restart")
    asyncio.run(main(parser.parse_args()))
