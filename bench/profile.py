"""Where each process of the stack spends its CPU under a write load: py-spy profiles, summed up.

    .venv/bin/python bench/profile.py [--workload http|reads|kafka|idle] [--seconds 20] [--rate 150]

Starts a throwaway embedded stack, warms it, then samples every Python process of it (the four
services and both MongoDB stand-ins; the broker is a native binary, shown by its CPU alone) with
py-spy while a load runs:

- ``http``: one client creating versions over HTTP one after another (``one_client.py``'s load,
  the single-client write of ``vs_mlflow.py``);
- ``reads``: one client getting one of 100 versions after another over HTTP (``vs_mlflow.py``'s
  get, after one client's 100 versions): what a read costs each process, the audit of each
  access included;
- ``kafka``: registration commands published at ``--rate`` per second with a reader beside them
  (``soak.py``'s load, shortened);
- ``idle``: nothing, after one client's 100 versions: what the stack spends at rest (polling the
  broker, probes, timers), which every load pays on top of its own work.

The table shows, per process, the share of its samples spent in each package (by the file of the
innermost frame: ``pymongo``, ``asyncio``, ``pydantic``, the service's own code, …) and its
heaviest functions by own time. The raw profiles (collapsed stacks, one file per process, for
speedscope or flamegraph.pl) are kept under ``--out``. Idle threads are not sampled, so a
process's sample count follows its CPU. Needs ptrace rights over the stack's processes (root, or
``kernel.yama.ptrace_scope=0``). Not in ``make bench``: a diagnosis, not a target.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from one_client import MODELS, post_versions
from process_cpu import cpu_seconds, stack_groups
from registry_bench import use_unthrottled_admin_key
from rich.console import Console
from rich.table import Table
from soak import soak

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registry_cli.stack import EmbeddedStack
from tests.throwaway import throwaway_stack
from tests.waiting import until

console = Console()
SAMPLES_PER_SECOND = 100
TOP_PACKAGES = 6
TOP_FUNCTIONS = 5


@dataclass
class Profile:
    """One process's samples: by package of the innermost frame, and by innermost function."""

    samples: int
    by_package: Counter[str]
    by_function: Counter[str]


def py_spy() -> str:
    """The py-spy binary: the environment's own (a dev dependency), else one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: run `make setup` (it is a dev dependency) or `pip install py-spy`")
    return found


def package_of(frame: str) -> str:
    """``send (aiokafka/producer/producer.py)`` → ``aiokafka``; a standard-library module by its name."""
    where = frame.rsplit("(", 1)[-1].rstrip(")")
    parts = where.split("/")
    if len(parts) == 1:  # the standard library's top-level modules: asyncio's are under asyncio/
        return parts[0].removesuffix(".py")
    return parts[0] if parts[0] not in {"site-packages", "lib"} else parts[1]


def read_collapsed(path: Path) -> Profile:
    """A py-spy ``--format raw`` file: one ``frame;frame;…;innermost count`` line per distinct stack."""
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        innermost = stack.rsplit(";", 1)[-1]
        by_package[package_of(innermost)] += int(count)
        by_function[innermost] += int(count)
    return Profile(sum(by_package.values()), by_package, by_function)


async def record(pid: int, seconds: float, output: Path) -> bool:
    """Sample ``pid`` and its children for ``seconds`` into ``output`` (collapsed stacks); False if not Python."""
    process = await asyncio.create_subprocess_exec(
        py_spy(),
        "record",
        f"--pid={pid}",
        f"--duration={round(seconds)}",
        f"--rate={SAMPLES_PER_SECOND}",
        "--format=raw",
        "--nolineno",
        "--subprocesses",
        "--nonblocking",  # never pause the process: the load's own timing stays as it is
        f"--output={output}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await process.communicate()
    if b"No python processes found" in errors:
        return False
    if process.returncode != 0 or not output.exists():
        raise RuntimeError(f"py-spy could not sample pid {pid}: {errors.decode(errors='replace')[-500:]}")
    return True


async def load(stack: EmbeddedStack, key: str, args: argparse.Namespace) -> str:
    """Run the chosen load for ``args.seconds`` (HTTP writes with ``key``); a line saying what it did."""
    if args.workload == "http":
        latencies = await post_versions(stack, key, first=100, seconds=args.seconds)
        return f"{len(latencies)} versions created over HTTP by one client"
    if args.workload == "reads":
        count = await get_versions(stack, key, seconds=args.seconds)
        return f"{count} versions read over HTTP by one client"
    if args.workload == "idle":
        await asyncio.sleep(args.seconds)
        return "the stack at rest, after one client's 100 versions"
    soak_args = argparse.Namespace(minutes=args.seconds / 60, rate=args.rate, read_interval=0.1, models=300, drain=30)
    run, _ = await soak(stack, soak_args)
    return f"{sum(m.outcomes for m in run.minutes)} registrations over Kafka at {args.rate:g}/s, reads beside"


async def main(args: argparse.Namespace) -> int:
    out: Path = args.out / f"{args.workload}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    console.print("starting the embedded stack …")
    async with throwaway_stack("profile-", before_services=use_unthrottled_admin_key) as stack:
        key = str(stack.admin_key)  # unthrottled: use_unthrottled_admin_key made it before the services
        if args.workload in ("http", "reads", "idle"):
            await post_versions(stack, key, first=0, seconds=0)  # connections, caches and the models
        groups = stack_groups(stack)
        console.print(f"sampling {len(groups)} processes for {args.seconds:g} s under the {args.workload} load …")
        before = await asyncio.to_thread(cpu_seconds, stack)
        samplers = [record(pid, args.seconds, out / f"{name}.txt") for name, pid in groups.items()]
        *sampled, done = await asyncio.gather(*samplers, load(stack, key, args))
        after = await asyncio.to_thread(cpu_seconds, stack)
    profiles = {
        name: read_collapsed(out / f"{name}.txt") if python else None
        for name, python in zip(groups, sampled, strict=True)
    }
    cpu = {name: after[name] - before[name] for name in groups}
    console.print(table(profiles, cpu, title=f"Where the CPU went: {done} ({args.seconds:g} s)"))
    console.print(f"raw profiles (collapsed stacks): {out}")
    return 0


async def get_versions(stack: EmbeddedStack, key: str, *, seconds: float) -> int:
    """Get the versions ``post_versions(first=0)`` made, one after another, for ``seconds``; how many."""
    headers, count = {"Authorization": f"Bearer {key}"}, 0
    async with httpx.AsyncClient(base_url=stack.url("query"), headers=headers, timeout=60) as http:
        last = f"/v1/models/platform/m-{99 % MODELS}/versions/1.0.99"

        async def shown() -> bool:  # the projection may lag the last write a moment
            return (await http.get(last)).status_code == 200

        await until(shown, timeout=30, what="the query service showing the versions written", interval=0.1)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            number = count % 100
            answer = await http.get(f"/v1/models/platform/m-{number % MODELS}/versions/1.0.{number}")
            if answer.status_code != 200:
                raise RuntimeError(f"version 1.0.{number} was not read: {answer.status_code} {answer.text[:300]}")
            count += 1
    return count


def table(profiles: dict[str, Profile | None], cpu: dict[str, float], *, title: str) -> Table:
    """Per process, busiest first: CPU seconds, samples, packages by share, heaviest functions by share."""
    result = Table(title=title, show_lines=True)
    for column in ("process", "CPU s", "samples", "packages (own time)", "functions (own time)"):
        result.add_column(column, justify="right" if column in {"CPU s", "samples"} else "left")
    for name, profile in sorted(profiles.items(), key=lambda kv: -cpu[kv[0]]):
        if profile is None:
            result.add_row(name, f"{cpu[name]:.1f}", "", "native binary: not sampled", "")
            continue
        total = max(profile.samples, 1)
        packages = ", ".join(f"{p} {n * 100 / total:.0f}%" for p, n in profile.by_package.most_common(TOP_PACKAGES))
        functions = "\n".join(f"{n * 100 / total:4.1f}% {f}" for f, n in profile.by_function.most_common(TOP_FUNCTIONS))
        result.add_row(name, f"{cpu[name]:.1f}", str(profile.samples), packages, functions)
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    loads = ("http", "reads", "kafka", "idle")
    parser.add_argument("--workload", choices=loads, default="http", help="the load sampled under")
    parser.add_argument("--seconds", type=float, default=20, help="how long the load and the sampling last")
    parser.add_argument("--rate", type=float, default=150, help="kafka: registration commands per second")
    parser.add_argument("--out", type=Path, default=Path(".data/profiles"), help="where the raw profiles go")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
