"""MLflow's model registry and this registry, the same workloads over HTTP; prints one table (no assertions).

    .venv/bin/python bench/vs_mlflow.py [--versions 500] [--models 1000] [--reads 1000]   # a few minutes

MLflow 3 runs as ``mlflow server`` over SQLite with its own defaults (uvicorn, 4 workers; the job
runner off) on a free loopback port, in its own process group; the registry as the embedded stack
(broker, MongoDB stand-in, four services) with an unthrottled key of one team. One system runs at a
time, so the other's idle work takes no CPU from it, and each is stopped before the next starts
(on Ctrl-C or an error too). Both are sent the same names, tags, descriptions and S3 sources, one
keep-alive ``httpx.AsyncClient`` per client. In this order, for each:

1. Load ``--models`` models from 8 clients (MLflow ``registered-models/create``; the registry makes
   a model with its first version, so that is what it is sent): models/s.
2. Walk every model page by page at each one's largest page (MLflow 1,000, the registry 200), five
   times: the p50 of a whole walk and of one page (ms).
3. Create ``--versions`` versions spread over five models, from 1 client, then from 8 at once
   (MLflow ``model-versions/create`` into registered models made beforehand, the registry
   ``POST /v1/models/{team}/{name}/versions``): versions/s (of those accepted) and p50/p99, and
   the CPU milliseconds every process of each system spent per version (``bench/process_cpu.py``):
   the two share this machine's cores, so that bounds how fast either could go here.
4. Get one version, ``--reads`` times one after another, picked at random among those just created
   (this and the next two: p50/p99 in ms, after ten untimed requests).
5. List by tag ``owner=alice`` (a quarter of the models), its first page of 50.
6. Search "fraud" (an eighth of the models by name): MLflow ``name LIKE '%fraud%'``, the registry's
   ranked search over names, descriptions and tags; 50 a page. The registry's index keeps recent
   result pages until its next commit, so after the first request this is served from memory.
7. Memory after all of the above: RSS summed over every process, each printed (MLflow: the CLI,
   uvicorn's supervisor, multiprocessing's resource tracker and the workers; the registry: four
   services, the broker and the two MongoDB stand-ins), and PSS, which counts shared pages once.

Ratios read > 1 when the registry is ahead: registry/MLflow for throughput, MLflow/registry for
latency, time and memory. Targets (printed beside each ratio): no row below 1x; creating versions
from 8 clients 3x; walks, gets and lists by tag 3x; search 5x; at most half MLflow's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from process_cpu import group_cpu_seconds, stack_groups
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registry_cli.config import free_port
from registry_cli.database_users import service_database
from registry_cli.processes import Child, group_members
from registry_cli.stack import EmbeddedStack
from registry_contract.auth import SCOPES
from shared.chassis.keystore import issue_key
from tests.throwaway import throwaway_stack

console = Console()
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
MLFLOW_DEFAULT_WORKERS = 4  # `mlflow server --help`: "Number of worker processes (default: 4)"
TEAM = "bench"
TOPICS = ("fraud", "churn", "ranking", "pricing", "forecast", "vision", "speech", "credit")
OWNERS = ("alice", "bob", "carol", "dave")
WRITE_MODELS, WALKS, PAGE = 5, 5, 50
Call = tuple[str, dict[str, Any]]  # path and query parameters of a GET


class BenchError(RuntimeError):
    """A system refused a read or did not come up; the message says which and why."""


@dataclass(frozen=True)
class Item:
    """What both systems are sent for one model version (or one model of the load)."""

    model: str
    number: int  # the version's ordinal within its model: the registry's 1.<number>.0
    tags: dict[str, str]
    description: str

    @property
    def source(self) -> str:
        return f"s3://ml-models/{TEAM}/{self.model}/{self.number}/model.tar.gz"


def catalogue(models: int) -> list[Item]:
    return [
        Item(
            f"{TOPICS[i % len(TOPICS)]}-scorer-{i:05d}",
            0,
            {"owner": OWNERS[i // len(TOPICS) % len(OWNERS)], "domain": TOPICS[i % len(TOPICS)]},
            f"Scores {TOPICS[i % len(TOPICS)]} cases for team {TEAM}, build {i}",
        )
        for i in range(models)
    ]


def versions(count: int, clients: int) -> list[Item]:
    return [
        Item(
            f"writes-{clients}c-{i % WRITE_MODELS}",
            i // WRITE_MODELS,
            {"owner": "alice", "dataset": f"cards-{i % 12}"},
            f"Build {i} of the card scorer",
        )
        for i in range(count)
    ]


def memory_mb(groups: list[int]) -> tuple[float, float, int]:
    """RSS and PSS summed over every process of ``groups`` (each one printed), and how many processes that is."""
    rss = pss = 0.0
    pids = [pid for group in groups for pid in group_members(group)]
    for pid in pids:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            own = {"Rss:": 0.0, "Pss:": 0.0}
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.split(maxsplit=1)[0] in own:
                    own[line.split()[0]] = int(line.split()[1]) / 1024
            rss, pss = rss + own["Rss:"], pss + own["Pss:"]
            command = b" ".join(argv).decode(errors="replace")[:100]
            console.print(f"  [dim]{pid}: RSS {own['Rss:']:.0f} MB  {command}")
    return rss, pss, len(pids)


class Target(Protocol):
    """One system under test: how each workload's requests look for it."""

    label: str

    def client(self, *, write: bool) -> httpx.AsyncClient: ...
    async def create_model(self, http: httpx.AsyncClient, item: Item) -> httpx.Response: ...
    async def prepare_writes(self, http: httpx.AsyncClient, items: list[Item]) -> None: ...
    async def create_version(self, http: httpx.AsyncClient, item: Item) -> httpx.Response: ...
    def created(self, item: Item, answer: httpx.Response) -> str: ...
    def get_version(self, model: str, version: str) -> Call: ...
    def by_tag(self) -> Call: ...
    def search(self) -> Call: ...
    def walk_page(self, cursor: str | None) -> Call: ...
    def page(self, body: Any) -> tuple[list[Any], str | None]: ...
    async def ready(self, http: httpx.AsyncClient, models: int) -> bool: ...
    def process_groups(self) -> list[int]: ...


class Mlflow:
    """MLflow's REST API (``/api/2.0/mlflow``), as its own client calls it."""

    label = "MLflow"
    api = "/api/2.0/mlflow"

    def __init__(self, url: str, server: Child) -> None:
        self.url, self.server = url, server

    def client(self, *, write: bool) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=60)

    async def create_model(self, http: httpx.AsyncClient, item: Item) -> httpx.Response:
        body = {"name": item.model, "tags": pairs(item.tags), "description": item.description}
        return await http.post(f"{self.api}/registered-models/create", json=body)

    async def prepare_writes(self, http: httpx.AsyncClient, items: list[Item]) -> None:
        first = {item.model: item for item in reversed(items)}
        for item in first.values():
            (await self.create_model(http, item)).raise_for_status()

    async def create_version(self, http: httpx.AsyncClient, item: Item) -> httpx.Response:
        body = {"name": item.model, "source": item.source, "tags": pairs(item.tags), "description": item.description}
        return await http.post(f"{self.api}/model-versions/create", json=body)

    def created(self, item: Item, answer: httpx.Response) -> str:
        return str(answer.json()["model_version"]["version"])

    def get_version(self, model: str, version: str) -> Call:
        return f"{self.api}/model-versions/get", {"name": model, "version": version}

    def by_tag(self) -> Call:
        return f"{self.api}/registered-models/search", {"filter": "tags.owner = 'alice'", "max_results": PAGE}

    def search(self) -> Call:
        return f"{self.api}/registered-models/search", {"filter": "name LIKE '%fraud%'", "max_results": PAGE}

    def walk_page(self, cursor: str | None) -> Call:
        params: dict[str, Any] = {"max_results": 1000}  # SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD
        if cursor:
            params["page_token"] = cursor
        return f"{self.api}/registered-models/search", params

    def page(self, body: Any) -> tuple[list[Any], str | None]:
        return body.get("registered_models", []), body.get("next_page_token")

    async def ready(self, http: httpx.AsyncClient, models: int) -> bool:
        return True

    def process_groups(self) -> list[int]:
        assert self.server.process
        return [self.server.process.pid]  # Child starts a new session: the group is the server's pid


class Registry:
    """This registry's HTTP APIs: writes on registration, reads and search on query."""

    label = "registry"

    def __init__(self, stack: EmbeddedStack, key: str) -> None:
        self.stack, self.headers = stack, {"Authorization": f"Bearer {key}"}

    def client(self, *, write: bool) -> httpx.AsyncClient:
        url = self.stack.url("registration" if write else "query")
        return httpx.AsyncClient(base_url=url, headers=self.headers, timeout=60)

    async def create_model(self, http: httpx.AsyncClient, item: Item) -> httpx.Response:
        return await self.create_version(http, item)

    async def prepare_writes(self, http: httpx.AsyncClient, items: list[Item]) -> None:
        """Nothing: a model is made by its first version."""

    async def create_version(self, http: httpx.AsyncClient, item: Item) -> httpx.Response:
        body = {
            "version": f"1.{item.number}.0",
            "framework": "xgboost",
            "artifact_uri": item.source,
            "tags": item.tags,
            "description": item.description,
        }
        return await http.post(f"/v1/models/{TEAM}/{item.model}/versions", json=body)

    def created(self, item: Item, answer: httpx.Response) -> str:
        return f"1.{item.number}.0"

    def get_version(self, model: str, version: str) -> Call:
        return f"/v1/models/{TEAM}/{model}/versions/{version}", {}

    def by_tag(self) -> Call:
        return "/v1/models", {"tag": "owner:alice", "limit": PAGE}

    def search(self) -> Call:
        return "/v1/assistant/search", {"q": "fraud", "limit": PAGE}

    def walk_page(self, cursor: str | None) -> Call:
        return "/v1/models", {"limit": 200, "cursor": cursor} if cursor else {"limit": 200}

    def page(self, body: Any) -> tuple[list[Any], str | None]:
        return body["items"], body.get("next_cursor")

    async def ready(self, http: httpx.AsyncClient, models: int) -> bool:
        """Whether the search index has caught up with the load (it follows the event stream)."""
        answer = await http.get("/v1/assistant/search", params={"q": "fraud", "limit": 1})
        return answer.status_code == 200 and answer.json()["total"] >= -(-models // len(TOPICS))

    def process_groups(self) -> list[int]:
        return list(stack_groups(self.stack).values())


def pairs(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


@dataclass
class Writes:
    rate: float
    p50: float
    p99: float
    failed: int
    accepted: list[tuple[Item, httpx.Response]]


async def write_all(
    target: Target,
    send: Callable[[httpx.AsyncClient, Item], Awaitable[httpx.Response]],
    items: list[Item],
    clients: int,
) -> Writes:
    """Send ``items`` from ``clients`` concurrent clients, each one request at a time."""
    latencies: list[float] = []
    answers: list[tuple[Item, httpx.Response]] = []

    async def worker(http: httpx.AsyncClient, share: list[Item]) -> None:
        for item in share:
            started = time.perf_counter()
            answer = await send(http, item)
            latencies.append(time.perf_counter() - started)
            answers.append((item, answer))

    async with contextlib.AsyncExitStack() as stack:
        https = [await stack.enter_async_context(target.client(write=True)) for _ in range(clients)]
        started = time.perf_counter()
        await asyncio.gather(*(worker(http, items[w::clients]) for w, http in enumerate(https)))
        elapsed = time.perf_counter() - started
    accepted = [(item, answer) for item, answer in answers if answer.is_success]
    refused = [answer for _, answer in answers if not answer.is_success]
    if refused:
        first = refused[0]
        console.print(f"  [yellow]{target.label}: {len(refused)} of {len(items)} refused, first {first.status_code}")
        console.print(f"  [yellow]{first.text[:300]}")
    return Writes(
        len(accepted) / elapsed,
        percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000,
        len(refused),
        accepted,
    )


async def timed(target: Target, calls: list[Call], *, listing: bool = False) -> tuple[float, float]:
    """p50 and p99 (ms) of ``calls`` one after another, after a few untimed ones (a list must not be empty)."""
    latencies: list[float] = []
    async with target.client(write=False) as http:
        path, params = calls[0]
        first = await http.get(path, params=params)
        if first.status_code != 200 or (listing and not target.page(first.json())[0]):
            raise BenchError(f"{target.label} GET {path} {params}: {first.status_code} {first.text[:300]}")
        for warm, (path, params) in enumerate([*calls[:10], *calls]):
            started = time.perf_counter()
            answer = await http.get(path, params=params)
            if warm >= min(10, len(calls)):
                latencies.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise BenchError(f"{target.label} GET {path} {params}: {answer.status_code} {answer.text[:300]}")
    return percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000


async def walk(target: Target, models: int) -> tuple[float, float, int]:
    """The p50 (ms) of a walk over every model and of one page, and pages per walk."""
    totals: list[float] = []
    pages: list[float] = []
    async with target.client(write=False) as http:
        for _ in range(WALKS):
            cursor: str | None = None
            seen = count = 0
            started = time.perf_counter()
            while True:
                path, params = target.walk_page(cursor)
                page_started = time.perf_counter()
                answer = await http.get(path, params=params)
                pages.append(time.perf_counter() - page_started)
                if answer.status_code != 200:
                    raise BenchError(f"{target.label} walk: {answer.status_code} {answer.text[:300]}")
                items, cursor = target.page(answer.json())
                seen, count = seen + len(items), count + 1
                if not cursor:
                    break
            totals.append(time.perf_counter() - started)
            if seen != models:
                raise BenchError(f"{target.label} walk saw {seen} models, not {models}")
    return percentile(totals, 50) * 1000, percentile(pages, 50) * 1000, count


def cpu_of(target: Target) -> float:
    """CPU seconds so far of every process of ``target`` (all its process groups)."""
    return sum(group_cpu_seconds(group) for group in target.process_groups())


async def run_workloads(target: Target, args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}
    console.print(f"{target.label}: loading {args.models} models from 8 clients …")
    load = await write_all(target, target.create_model, catalogue(args.models), clients=8)
    results |= {"load": load.rate, "failed": load.failed}
    async with target.client(write=False) as http:
        deadline = time.perf_counter() + 120
        while not await target.ready(http, args.models):
            if time.perf_counter() > deadline:
                raise BenchError(f"{target.label}: the search index did not catch up with the load in 120 s")
            await asyncio.sleep(0.2)
    console.print(f"{target.label}: walking {args.models} models {WALKS} times …")
    results["walk"], results["walk_page"], results["walk_pages"] = await walk(target, args.models - load.failed)
    created: list[tuple[str, str]] = []
    for clients in (1, 8):
        console.print(f"{target.label}: {args.versions} versions from {clients} client(s) …")
        items = versions(args.versions, clients)
        async with target.client(write=True) as http:
            await target.prepare_writes(http, items)
        cpu_before = await asyncio.to_thread(cpu_of, target)
        writes = await write_all(target, target.create_version, items, clients)
        cpu_ms = (await asyncio.to_thread(cpu_of, target) - cpu_before) * 1000 / max(len(writes.accepted), 1)
        results |= {f"w{clients}": writes.rate, f"w{clients}_p50": writes.p50, f"w{clients}_p99": writes.p99}
        results[f"w{clients}_cpu"] = cpu_ms
        results["failed"] += writes.failed
        created += [(item.model, target.created(item, answer)) for item, answer in writes.accepted]
    console.print(f"{target.label}: reads …")
    rng = random.Random(1)
    picks = [target.get_version(*rng.choice(created)) for _ in range(args.reads)]
    results["get_p50"], results["get_p99"] = await timed(target, picks)
    results["tag_p50"], results["tag_p99"] = await timed(target, [target.by_tag()] * args.reads, listing=True)
    results["search_p50"], results["search_p99"] = await timed(target, [target.search()] * args.reads, listing=True)
    results["rss"], results["pss"], results["processes"] = memory_mb(target.process_groups())
    return results


@contextlib.asynccontextmanager
async def mlflow_server(root: Path, workers: int) -> AsyncIterator[Mlflow]:
    """``mlflow server`` over SQLite on a free loopback port, its whole process group stopped at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [MLFLOW, "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db"]
    argv += ["--default-artifact-root", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers)]  # explicit, so an ambient MLFLOW_WORKERS changes nothing
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = Child("mlflow", argv, env=env, quiet=True, log_path=root / "mlflow.log")
    try:
        await server.start()
        deadline = time.perf_counter() + 240
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:
            while True:
                if server.returncode is not None:
                    log = (root / "mlflow.log").read_text(errors="replace")[-2000:]
                    raise BenchError(f"mlflow server exited with {server.returncode} during start-up:\n{log}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/health")).status_code == 200:
                        break
                if time.perf_counter() > deadline:
                    raise BenchError(f"mlflow server did not answer /health within 240 s ({url})")
                await asyncio.sleep(0.2)
        yield Mlflow(url, server)
    finally:
        await stop_group(server)


async def stop_group(server: Child) -> None:
    """SIGTERM the server's process group (the CLI runs uvicorn, which runs the workers); SIGKILL what stays."""
    if server.process is None:
        return
    group = server.process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    await server.stop(grace=15)
    deadline = time.perf_counter() + 15
    while group_members(group) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    if group_members(group):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


async def bench_key(stack: EmbeddedStack) -> str:
    """A key of team ``bench`` with every scope but platform:admin, rate-limited far above this load."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    try:
        key, _ = await issue_key(
            client[service_database("registration")]["api_keys"],
            team=TEAM,
            name="vs-mlflow",
            scopes=[scope for scope in SCOPES if scope != "platform:admin"],
            created_by="bench",
            rate_limit=(1e5, 100_000),
        )
    finally:
        await client.close()
    return key.token


# (workload, figure, result key, whether more is better, target factor or None)
# The last field is the target ratio (issue "Speed once each service owns its data", item 4): no
# row below 1.0x; from 8 clients 3x MLflow's versions/s, from 1 client a p50 no higher than
# MLflow's; get, list by tag and walk 3x; search 5x; at most half MLflow's memory.
ROWS: list[tuple[str, str, str, bool, float | None]] = [
    ("load models, 8 clients", "models/s", "load", True, 1),
    ("walk every model", "ms a walk", "walk", False, 3),
    ("", "one page p50 ms", "walk_page", False, 1),
    ("create a version, 1 client", "versions/s", "w1", True, 1),
    ("", "p50 ms", "w1_p50", False, 1),
    ("", "p99 ms", "w1_p99", False, 1),
    ("", "CPU ms a version, all processes", "w1_cpu", False, None),
    ("create a version, 8 clients", "versions/s", "w8", True, 3),
    ("", "p50 ms", "w8_p50", False, 1),
    ("", "p99 ms", "w8_p99", False, 1),
    ("", "CPU ms a version, all processes", "w8_cpu", False, None),
    ("get one version", "p50 ms", "get_p50", False, 3),
    ("", "p99 ms", "get_p99", False, 3),
    ("list by tag, first 50", "p50 ms", "tag_p50", False, 3),
    ("", "p99 ms", "tag_p99", False, 3),
    ("search 'fraud', first 50", "p50 ms", "search_p50", False, 5),
    ("", "p99 ms", "search_p99", False, 5),
    ("memory after the run", "RSS MB", "rss", False, 2),
    ("", "PSS MB", "pss", False, 1),
    ("writes refused", "requests", "failed", False, None),
]


def report(mlflow: dict[str, float], registry: dict[str, float], args: argparse.Namespace) -> None:
    title = (
        f"MLflow ({args.mlflow_workers} workers, SQLite) vs the registry (embedded stack): {args.models} models, "
        f"{args.versions} versions a run, {args.reads} reads each"
    )
    caption = (
        f"ratio > 1: the registry is ahead. Pages a walk: MLflow {mlflow['walk_pages']:.0f} (≤ 1,000), registry "
        f"{registry['walk_pages']:.0f} (≤ 200). Processes: MLflow {mlflow['processes']:.0f}, registry "
        f"{registry['processes']:.0f}."
    )
    table = Table(title=title, caption=caption)
    for column in ("workload", "figure", "MLflow", "registry", "ratio", "target"):
        table.add_column(column, justify="left" if column in ("workload", "figure") else "right")
    for workload, figure, key, more_is_better, factor in ROWS:
        ours, theirs = registry[key], mlflow[key]
        if key == "failed":
            table.add_row(workload, figure, f"{theirs:.0f}", f"{ours:.0f}", "", "")
            continue
        ratio = (ours / theirs if more_is_better else theirs / ours) if min(ours, theirs) > 0 else float("nan")
        shown = f"{ratio:.1f}x"
        target = ""
        if factor is not None:
            shown = f"[{'green' if ratio >= factor else 'red'}]{shown}[/]"
            target = "≤ half" if key == "rss" else f"≥ {factor:g}x"
        digits = 1 if max(ours, theirs) < 100 else 0
        table.add_row(workload, figure, f"{theirs:.{digits}f}", f"{ours:.{digits}f}", shown, target)
    console.print(table)


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="vs-mlflow-") as root:
        console.print(f"starting MLflow ({args.mlflow_workers} workers, SQLite) …")
        async with mlflow_server(Path(root), args.mlflow_workers) as mlflow:
            mlflow_results = await run_workloads(mlflow, args)
    keys: list[str] = []

    async def before(stack: EmbeddedStack) -> None:
        keys.append(await bench_key(stack))

    console.print("starting the embedded stack …")
    async with throwaway_stack("vs-mlflow-stack-", before_services=before) as stack:
        registry_results = await run_workloads(Registry(stack, keys[0]), args)
    report(mlflow_results, registry_results, args)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=500, help="versions created per run (1 client, 8 clients)")
    parser.add_argument("--models", type=int, default=1000, help="models loaded, then walked")
    parser.add_argument("--reads", type=int, default=1000, help="requests per read workload")
    parser.add_argument("--mlflow-workers", type=int, default=MLFLOW_DEFAULT_WORKERS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
