"""Soak: registrations over Kafka at a steady rate for minutes, reads beside them; prints a table (no assertions).

    .venv/bin/python bench/soak.py --help
    COLUMNS=200 .venv/bin/python bench/soak.py     # 5 minutes at 150 registrations/s (issue 24, item 3)

A fresh embedded stack is sent ``--rate`` registration commands a second for ``--minutes``,
published with plain aiokafka (``acks=all``, signed with an unthrottled platform:admin key) and
spread over ``--models`` models in 20 teams, each command a new version. Beside the producer, and
not paced by it, a reader asks the query service every ``--read-interval`` seconds for a version
whose outcome event it saw at least a second earlier (the query follows the same events, so a
younger one may not be projected yet), and every tenth time for a filtered model list (team and
framework, first 50), after ten untimed ones. Any answer but 200, or none within 10 s, is a read
error.

Per minute of load: get and list p50/p99, reads and read errors, commands published and outcome
events seen, and the RSS of every process at the minute's end (the four services, the broker and
the two MongoDB stand-ins, each with its children). After the load, up to ``--drain`` seconds for
the last outcomes, then: lost (acknowledged by the broker, no outcome), doubled (more than one
distinct outcome event), outcome records delivered twice (the same event id again: the relay's
at-least-once, which consumers de-duplicate), and registrations/s end to end (commands answered
over the time from the load's start to the last outcome).

Targets: read p99 under 50 ms in every minute, nothing lost or doubled, memory flat: no service
grows by more than 10% from the end of minute 1 to the end of the last minute, beyond, for the
query service, the read model's documented 4.5 KB a version registered meanwhile
(``docs/operations.md``; that is data held, not a leak). The broker and the MongoDB stand-ins keep
their data in memory and grow with it: their growth is printed, not judged. A run of one minute
prints its growth from the start but is not judged: that includes start-up's one-time allocations.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import math
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from process_cpu import cpu_seconds, cpu_text, per_unit_ms, stack_groups
from registry_bench import FRAMEWORKS, auth, register, use_unthrottled_admin_key
from rich.console import Console
from rich.table import Table
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registry_cli.processes import group_members
from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from tests.throwaway import throwaway_stack

console = Console()
TEAMS = 20
MINUTE = 60.0
OUTCOME_TYPES = {messages.MODEL_VERSION_REGISTERED, messages.COMMAND_REJECTED}
READ_AFTER = 1.0  # s after its outcome event before a version is read (the query projects the same events)
READ_TIMEOUT = 10.0
RECENT = 2000  # the reader picks among this many most recently registered versions
LIST_EVERY = 10  # one filtered list read per this many ticks of the reader
WARM_UP_READS = 10
P99_TARGET_MS = 50.0
FLAT_SHARE = 0.10  # a process is flat if it grew by at most this share of its minute-1 RSS …
PROJECTION_MB_PER_VERSION = 4.5 / 1024  # … plus, for the query, its read model per version (docs/operations.md)
SERVICES = frozenset({"registration", "query", "deploy-tracker", "audit"})  # judged flat; the stores are not


@dataclass
class Minute:
    """What happened in one minute of load (or in the drain after it)."""

    gets: list[float] = field(default_factory=list)  # seconds, by when the read started
    lists: list[float] = field(default_factory=list)
    read_errors: int = 0
    published: int = 0
    outcomes: int = 0  # commands whose first outcome event was seen in this minute
    rss: dict[str, float] = field(default_factory=dict)  # MB per process at the minute's end


@dataclass
class Run:
    """The soak's shared state: the producer, the outcome consumer and the reader each fill their part."""

    started: float
    seconds: float
    minutes: list[Minute]
    drain: Minute = field(default_factory=Minute)
    start_rss: dict[str, float] = field(default_factory=dict)
    published: dict[str, tuple[float, str]] = field(default_factory=dict)  # command id → (sent at, version path)
    unacknowledged: set[str] = field(default_factory=set)
    outcome_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # command id → event ids
    deliveries: Counter[str] = field(default_factory=Counter)  # outcome event id → records seen
    rejected: int = 0
    outcome_latencies: list[float] = field(default_factory=list)
    last_outcome_at: float = 0.0
    readable_at: list[float] = field(default_factory=list)  # when each registered version's outcome was seen
    readable_paths: list[str] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU ms per registration answered during the load

    @property
    def ends(self) -> float:
        return self.started + self.seconds

    def minute_end(self, index: int) -> float:
        return self.started + min((index + 1) * MINUTE, self.seconds)

    def minute_at(self, moment: float) -> Minute:
        """The minute ``moment`` falls in; the drain once the load has stopped."""
        if moment >= self.ends:
            return self.drain
        return self.minutes[min(int((moment - self.started) // MINUTE), len(self.minutes) - 1)]

    def acknowledged(self) -> set[str]:
        return set(self.published) - self.unacknowledged

    def all_answered(self) -> bool:
        return all(command in self.outcome_ids for command in self.acknowledged())

    def recent_version(self, seen_before: float, rng: random.Random) -> str | None:
        """A version among the latest registered whose outcome was seen before ``seen_before``."""
        # The outcome consumer appends to both lists from another thread: the shorter one counts.
        newest = min(bisect.bisect_right(self.readable_at, seen_before), len(self.readable_paths))
        if newest == 0:
            return None
        return self.readable_paths[rng.randrange(max(0, newest - RECENT), newest)]


def team_of(model: int) -> str:
    return f"soak-{model % TEAMS:02d}"


# ---------------------------------------------------------------------------------------------- outcomes


def record_outcome(run: Run, headers: dict[str, str], now: float) -> None:
    """Count one record of ``registry.events`` if it is the outcome of one of our commands."""
    command = headers.get("ce_causationid", "")
    if headers.get("ce_type") not in OUTCOME_TYPES or command not in run.published:
        return
    event_id = headers.get("ce_id", "")
    run.deliveries[event_id] += 1
    first = command not in run.outcome_ids
    run.outcome_ids[command].add(event_id)
    if not first:
        return
    sent_at, path = run.published[command]
    run.minute_at(now).outcomes += 1
    run.outcome_latencies.append(now - sent_at)
    run.last_outcome_at = now
    if headers["ce_type"] == messages.COMMAND_REJECTED:
        run.rejected += 1
    else:
        run.readable_at.append(now)
        run.readable_paths.append(path)


async def follow_outcomes(consumer: AIOKafkaConsumer, run: Run) -> None:
    async for record in consumer:
        headers = {key: bytes(value).decode("utf-8", "replace") for key, value in record.headers or ()}
        record_outcome(run, headers, time.perf_counter())


async def outcome_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer of ``registry.events`` in a group of its own, returned once it has its partitions."""
    consumer = AIOKafkaConsumer(
        "registry.events",
        bootstrap_servers=bootstrap,
        group_id=f"soak-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",  # nothing relayed while the group forms is missed
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    # Joining the group takes seconds; publishing before it would crowd minute 1's outcomes into minute 2.
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return consumer


# ---------------------------------------------------------------------------------------------- load


async def produce(stack: EmbeddedStack, run: Run, *, rate: float, models: int) -> None:
    """Publish ``rate`` new versions a second until the run ends; keep going at once if behind."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    acks: list[tuple[str, asyncio.Future[object]]] = []
    sequence = 0
    try:
        while (now := time.perf_counter()) < run.ends:
            model = sequence % models
            team, name, version = team_of(model), f"m{model:04d}", f"1.{sequence // models}.0"
            command = register(team, name, version, FRAMEWORKS[model % len(FRAMEWORKS)], stack.admin_key)
            value, headers = command.to_kafka()
            run.published[command.id] = (now, f"/v1/models/{team}/{name}/versions/{version}")
            run.minute_at(now).published += 1
            try:
                ack = await producer.send("registry.commands", value, key=f"{team}/{name}".encode(), headers=headers)
                acks.append((command.id, ack))
            except Exception:
                run.unacknowledged.add(command.id)
            sequence += 1
            await asyncio.sleep(max(0.0, run.started + sequence / rate - time.perf_counter()))
        await producer.flush()
        for command_id, ack in acks:  # only what the broker acknowledged can be lost
            try:
                await ack
            except Exception:
                run.unacknowledged.add(command_id)
    finally:
        await producer.stop()


async def timed_get(
    http: httpx.AsyncClient, path: str, params: dict[str, str | int] | None = None
) -> tuple[float, bool]:
    """How long one GET took, and whether it answered 200 (a timeout counts, at its full wait)."""
    started = time.perf_counter()
    try:
        ok = (await http.get(path, params=params)).status_code == 200
    except httpx.HTTPError:
        ok = False
    return time.perf_counter() - started, ok


async def read_beside(stack: EmbeddedStack, run: Run, *, interval: float) -> None:
    """Every ``interval`` s, whatever the producer is doing: get a recent version, now and then a list."""
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=stack.url("query"), timeout=READ_TIMEOUT, headers=auth(stack)) as http:
        # Untimed, as registry_bench's: a minute's p99 is its worst read or so, not the connection's opening.
        for _ in range(WARM_UP_READS):
            await timed_get(http, "/v1/models", {"team": team_of(0), "limit": 50})
        tick, next_at = 0, time.perf_counter()
        while (now := time.perf_counter()) < run.ends:
            minute = run.minute_at(now)
            path = run.recent_version(now - READ_AFTER, rng)
            if path is not None:
                took, ok = await timed_get(http, path)
                minute.gets.append(took)
                minute.read_errors += 0 if ok else 1
            if tick % LIST_EVERY == 0:
                model = rng.randrange(TEAMS)
                params: dict[str, str | int] = {"team": team_of(model), "framework": FRAMEWORKS[model % 4], "limit": 50}
                took, ok = await timed_get(http, "/v1/models", params)
                minute.lists.append(took)
                minute.read_errors += 0 if ok else 1
            tick += 1
            # After a slow read the next starts at once rather than in a burst of missed ticks.
            next_at = max(next_at + interval, time.perf_counter())
            await asyncio.sleep(next_at - time.perf_counter())


async def read_in_a_thread_of_its_own(stack: EmbeddedStack, run: Run, *, interval: float) -> None:
    """The reader on an event loop of its own, in its own thread, as a client apart from the producer.

    On this process's loop, each read's answer waited for whatever the producer (signing and
    sending 150 commands a second) and the outcome consumer (decoding their events) were doing,
    and that wait counted as the query's. The thread still shares the interpreter's lock, which
    changes hands at least every 5 ms (``sys.getswitchinterval``).
    """
    await asyncio.to_thread(asyncio.run, read_beside(stack, run, interval=interval))


# ---------------------------------------------------------------------------------------------- memory


def group_rss_mb(group: int) -> float:
    """RSS summed over a process group (each stack process starts a session of its own), in MB."""
    total_kb = 0
    for pid in group_members(group):
        with contextlib.suppress(OSError, StopIteration):
            status = Path(f"/proc/{pid}/status").read_text()
            total_kb += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total_kb / 1024


def rss_by_process(stack: EmbeddedStack) -> dict[str, float]:
    return {name: group_rss_mb(group) for name, group in stack_groups(stack).items()}


async def sample_memory(stack: EmbeddedStack, run: Run) -> None:
    """RSS at each minute's end; in a thread, as walking /proc would stall the reader's event loop."""
    for index, minute in enumerate(run.minutes):
        await asyncio.sleep(max(0.0, run.minute_end(index) - time.perf_counter()))
        minute.rss = await asyncio.to_thread(rss_by_process, stack)


# ---------------------------------------------------------------------------------------------- the run


async def drain(run: Run, timeout: float) -> float:
    """Wait for the last outcomes (at most ``timeout`` s), then a little for any second one; the wait."""
    began = time.perf_counter()
    while not run.all_answered() and time.perf_counter() - began < timeout:
        await asyncio.sleep(0.5)
    waited = time.perf_counter() - began
    await asyncio.sleep(2.0)  # a doubled outcome, if any, has time to show up
    return waited


async def soak(stack: EmbeddedStack, args: argparse.Namespace) -> tuple[Run, float]:
    consumer = await outcome_consumer(stack.settings.kafka_bootstrap)
    start_rss = await asyncio.to_thread(rss_by_process, stack)
    minutes = [Minute() for _ in range(math.ceil(args.minutes))]
    run = Run(started=time.perf_counter(), seconds=args.minutes * MINUTE, minutes=minutes, start_rss=start_rss)
    following = asyncio.create_task(follow_outcomes(consumer, run))
    cpu_before = await asyncio.to_thread(cpu_seconds, stack)
    try:
        await asyncio.gather(
            produce(stack, run, rate=args.rate, models=args.models),
            read_in_a_thread_of_its_own(stack, run, interval=args.read_interval),
            sample_memory(stack, run),
        )
        answered = sum(minute.outcomes for minute in run.minutes)
        run.cpu_ms = per_unit_ms(cpu_before, await asyncio.to_thread(cpu_seconds, stack), answered)
        console.print(f"load done; waiting up to {args.drain:g} s for the last outcomes …")
        waited = await drain(run, args.drain)
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await consumer.stop()
    return run, waited


# ---------------------------------------------------------------------------------------------- the table


def p50_p99(seconds: list[float]) -> str:
    if not seconds:
        return ""
    return f"{percentile(seconds, 50) * 1000:.1f} / {percentile(seconds, 99) * 1000:.1f}"


def p99_met(minute: Minute) -> bool:
    """Whether the minute had reads and each kind's p99 was under the target."""
    kinds = [reads for reads in (minute.gets, minute.lists) if reads]
    return bool(kinds) and all(percentile(reads, 99) * 1000 < P99_TARGET_MS for reads in kinds)


def verdict(good: bool, text: str) -> str:
    """``text`` marked met or missed, in colour and in characters (for output that is not a terminal)."""
    return f"[green]{text} ✓[/]" if good else f"[red]{text} ✗[/]"


def memory_growth(run: Run) -> tuple[dict[str, float], dict[str, bool]]:
    """Growth per process from minute 1's end (the start, for one minute) to the last minute's, and which are flat.

    Over one minute this includes start-up's one-time allocations (the query's search index
    writer alone reserves 50 MB on its first document), so only runs of two minutes or more are judged.
    """
    first = run.minutes[0].rss if len(run.minutes) > 1 else run.start_rss
    last = run.minutes[-1].rss
    versions_meanwhile = sum(minute.outcomes for minute in (run.minutes[1:] or run.minutes))
    growth = {name: last.get(name, 0.0) - first.get(name, 0.0) for name in last}
    # Only the services are judged: the embedded broker and MongoDB stand-ins keep what they store
    # in memory, so they grow with the data by design (their growth is printed all the same).
    allowed = {name: FLAT_SHARE * first.get(name, 0.0) for name in last if name in SERVICES}
    if "query" in allowed:
        allowed["query"] += PROJECTION_MB_PER_VERSION * versions_meanwhile
    return growth, {name: growth[name] <= allowed[name] for name in allowed}


def minute_row(label: str, minute: Minute, processes: list[str], *, target: str = "") -> list[str]:
    reads = len(minute.gets) + len(minute.lists)
    return [
        label,
        p50_p99(minute.gets),
        p50_p99(minute.lists),
        f"{reads} ({minute.read_errors})" if reads else "",
        f"{minute.published} / {minute.outcomes}" if minute.published or minute.outcomes else "",
        *(f"{minute.rss[name]:.0f}" if name in minute.rss else "" for name in processes),
        target,
    ]


def summary_row(label: str, value: str, processes: list[str], target: str = "") -> list[str]:
    return [label, value, "", "", "", *("" for _ in processes), target]


def report(run: Run, waited: float, args: argparse.Namespace) -> None:
    processes = list(run.start_rss)
    table = Table(title=f"Soak: {args.minutes:g} min at {args.rate:g} registrations/s over Kafka, reads beside")
    for column in ("minute", "get p50 / p99 ms", "list p50 / p99 ms", "reads (errors)", "published / outcomes"):
        table.add_column(column, justify="left" if column == "minute" else "right")
    for name in processes:
        table.add_column(f"{name} MB", justify="right")
    table.add_column("target", justify="right")

    table.add_row(*minute_row("start", Minute(rss=run.start_rss), processes))
    for index, minute in enumerate(run.minutes):
        length = run.minute_end(index) - (run.started + index * MINUTE)
        label = f"{index + 1}" + ("" if length == MINUTE else f" ({length:.0f} s)")
        met = p99_met(minute)
        table.add_row(*minute_row(label, minute, processes, target=verdict(met, f"p99 < {P99_TARGET_MS:.0f} ms")))
    table.add_row(*minute_row(f"drain ({waited:.0f} s)", run.drain, processes))
    table.add_section()

    acknowledged = run.acknowledged()
    lost = sum(1 for command in acknowledged if command not in run.outcome_ids)
    doubled = sum(1 for ids in run.outcome_ids.values() if len(ids) > 1)
    redelivered = sum(1 for records in run.deliveries.values() if records > 1)
    answered = len(run.outcome_ids)
    rate = answered / (run.last_outcome_at - run.started) if run.last_outcome_at > run.started else 0.0
    slow = [str(index + 1) for index, minute in enumerate(run.minutes) if not p99_met(minute)]
    growth, flat = memory_growth(run)
    rows = [
        ("published / acked by broker", f"{len(run.published)} / {len(acknowledged)}", ""),
        ("published per second", f"{len(run.published) / run.seconds:.0f}", f"{args.rate:g}"),
        (f"lost (no outcome in {args.drain:g} s)", verdict(lost == 0, str(lost)), "0"),
        ("doubled (2+ outcome events)", verdict(doubled == 0, str(doubled)), "0"),
        ("outcome redelivered (same id)", str(redelivered), ""),
        ("rejected", verdict(run.rejected == 0, str(run.rejected)), "0"),
        ("registrations/s end to end", f"{rate:.0f}", f"{args.rate:g}"),
        ("publish → outcome p50 / p99 ms", p50_p99(run.outcome_latencies), ""),
        ("read p99 < 50 ms every minute", verdict(not slow, "yes" if not slow else f"no: {', '.join(slow)}"), "all"),
        ("CPU ms per registration by process (reads included)", cpu_text(run.cpu_ms), ""),
    ]
    for label, value, target in rows:
        table.add_row(*summary_row(label, value, processes, target))
    judged = len(run.minutes) > 1
    table.add_row(
        "RSS growth, minute 1 → last (MB)" if judged else "RSS growth, start → end (MB)",
        f"{sum(growth.values()):+.0f}",
        "",
        "",
        "",
        *(
            (verdict(flat[name], f"{growth[name]:+.0f}") if judged and name in flat else f"{growth[name]:+.0f}")
            if name in growth
            else ""
            for name in processes
        ),
        verdict(all(flat.values()), "flat") if judged else "flat (2+ min)",
    )
    console.print(table)


async def main(args: argparse.Namespace) -> int:
    console.print("starting the embedded stack …")
    async with throwaway_stack("registry-soak-", before_services=use_unthrottled_admin_key) as stack:
        console.print(
            f"soak: {args.minutes:g} min at {args.rate:g} registrations/s, reads every {args.read_interval:g} s …"
        )
        run, waited = await soak(stack, args)
    report(run, waited, args)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5, help="how long the load lasts")
    parser.add_argument("--rate", type=float, default=150, help="registration commands published per second")
    parser.add_argument("--read-interval", type=float, default=0.1, help="seconds between the reader's reads")
    parser.add_argument("--models", type=int, default=300, help="models the versions are spread over (20 teams)")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for the last outcomes")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
