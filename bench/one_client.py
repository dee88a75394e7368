"""One client creating versions over HTTP: latency, and the CPU each process of the stack spends per version.

    .venv/bin/python bench/one_client.py [--seconds 12] [--stop query,deploy-tracker,audit]

The single-client write of ``vs_mlflow.py`` (MLflow's p50 is the target), taken apart: a client
posts one version after another to registration for ``--seconds`` (after 100 untimed ones), and
the table shows the p50/p90 and, per process of the stack, the CPU milliseconds per version
(``bench/process_cpu.py``). The stack's seven processes share this machine's cores with the
client, so every millisecond another process spends on a registration (the query's projection, the
tracker's and the audit's consumers, the broker, the database servers) can delay the next one.

``--stop`` pauses the named services (SIGSTOP) before the timed part, to see what the write path
costs alone: what the others add is the difference. Not in ``make bench``: ``vs_mlflow.py`` measures
the same write from one client beside MLflow.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx
from process_cpu import add_cpu_row, cpu_seconds, per_unit_ms, stack_groups
from rich.console import Console
from rich.table import Table
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registry_cli.stack import EmbeddedStack
from tests.throwaway import throwaway_stack, unthrottled_admin_key

console = Console()
MODELS = 50  # versions go to this many models in turn, as a CI fleet's would


async def post_versions(stack: EmbeddedStack, key: str, *, first: int, seconds: float) -> list[float]:
    """Post versions one after another (numbered from ``first``) for ``seconds`` (or 100 if 0); their latencies."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.url("registration"), headers=headers, timeout=60) as http:
        number, started = first, time.perf_counter()
        while (time.perf_counter() - started < seconds) if seconds else number < first + 100:
            body = {"version": f"1.0.{number}", "framework": "xgboost", "artifact_uri": f"s3://ml-models/m/{number}"}
            sent = time.perf_counter()
            answer = await http.post(f"/v1/models/platform/m-{number % MODELS}/versions", json=body)
            latencies.append(time.perf_counter() - sent)
            if answer.status_code != 201:
                raise RuntimeError(f"version {number} was refused: {answer.status_code} {answer.text[:300]}")
            number += 1
    return latencies


async def main(args: argparse.Namespace) -> int:
    stopped = [name for name in args.stop.split(",") if name]
    console.print("starting the embedded stack …")
    async with throwaway_stack("one-client-") as stack:
        key = await unthrottled_admin_key(stack, name="one-client")
        await post_versions(stack, key, first=0, seconds=0)  # warm connections, caches and the models
        groups = stack_groups(stack)
        for name in stopped:
            os.killpg(groups[name], signal.SIGSTOP)
        try:
            before = await asyncio.to_thread(cpu_seconds, stack)
            latencies = await post_versions(stack, key, first=100, seconds=args.seconds)
            cpu = per_unit_ms(before, await asyncio.to_thread(cpu_seconds, stack), len(latencies))
        finally:
            for name in stopped:
                os.killpg(groups[name], signal.SIGCONT)
    table = Table(title=f"One client creating versions over HTTP for {args.seconds:g} s")
    for column in ("measure", "result", "target"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("versions created", f"{len(latencies)}", "")
    table.add_row(
        "latency p50 / p90 / p99 (ms)",
        " / ".join(f"{percentile(latencies, q) * 1000:.1f}" for q in (50, 90, 99)),
        "p50 ≤ MLflow's (vs_mlflow.py)",
    )
    add_cpu_row(table, "CPU ms per version, by process" + (f" ({', '.join(stopped)} paused)" if stopped else ""), cpu)
    console.print(table)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=12, help="how long the timed part lasts")
    parser.add_argument("--stop", default="", help="services to pause first, comma-separated (e.g. query,audit)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
