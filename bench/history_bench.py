"""History and evidence (issue 27) on the embedded stack; prints one table (no assertions).

    .venv/bin/python bench/history_bench.py [--rounds 40] [--reads 200] [--misses 80]

1. A model with a long history, written over HTTP in ``--rounds`` rounds of 50 events (5 versions
   registered, 25 alias moves over 5 aliases, 5 approvals, 15 deployment reports in 3
   environments): 2,000 events at the default. After each round, once the query has applied it
   (its consistency tokens answered), an instant is noted, so each instant lies between different
   events. Then, one client: a version read ``as_of`` each instant in turn (every read a cache miss:
   the query keeps 16 past states and there are more instants), ``as_of`` one instant again and
   again (cache hits), and the same read without ``as_of``.
2. That model's alias history, an environment's timeline and the model's timeline, a page of 100.
3. ``GET …/compare`` of 2 and of 10 versions of it.
4. Registration with a model-signing signature (P-256, the team's trusted key) against the same
   registration without one, over HTTP from one client, alternately; and the signature's check
   alone (``registration.provenance.verify``) in process.
5. The evidence bundle of a version with about ``--entries`` audit entries (its registration,
   approval, alias moves, deployment reports, reads), exported over HTTP from the audit service,
   and checked offline (``verify_bundle`` with the audit service's public keys) in process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from process_cpu import until_quiet
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.table import Table
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from registration.provenance import TrustedKey, verify
from registry_cli.database_users import service_database
from registry_cli.stack import EmbeddedStack
from registry_client.audit_keys import signature_check
from registry_client.signing import sign_model
from registry_contract.auth import SCOPES
from registry_contract.evidence_check import verify_bundle
from shared.chassis.keystore import issue_key
from tests.throwaway import throwaway_stack

console = Console()
TEAM, MODEL, EVIDENCE = "history-bench", "scorer", "evidence"
ALIASES = [f"a{i}" for i in range(5)]
ENVIRONMENTS = ["dev", "staging", "canary"]  # none gated (prod needs approval by default)
PER_ROUND = 5  # versions registered per round; each is approved, and deployed in every environment
CONSISTENCY = "X-Registry-Consistency"
Row = tuple[str, list[float], str]


async def make_key(stack: EmbeddedStack) -> str:
    """A key of the bench's team with every scope but platform:admin, its rate limit far above the load."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.settings.mongodb_uri, tz_aware=True)
    key, _ = await issue_key(
        client[service_database("registration")]["api_keys"],
        team=TEAM,
        name="history-bench",
        scopes=[s for s in SCOPES if s != "platform:admin"],
        created_by="bench",
        rate_limit=(1e5, 100_000),
    )
    await client.close()
    return key.token


def ok(answer: httpx.Response, *statuses: int) -> httpx.Response:
    if answer.status_code not in (statuses or (200, 201)):
        raise RuntimeError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}")
    return answer


def version_body(version: str, i: int) -> dict[str, Any]:
    return {
        "version": version,
        "framework": "xgboost",
        "artifact_uri": f"s3://models/{TEAM}/{MODEL}/{version}/model.tar.gz",
        "artifact_digest": "sha256:" + f"{i:064x}",
        "metrics": {"auc": 0.8 + i / 5000, "precision": 0.7 + i / 7000, "latency_ms": 20 - i / 50},
        "tags": {"owner": ("alice", "bob")[i % 2], "dataset": f"cards-{i % 7}"},
        "parameters": {"depth": str(4 + i % 5)},
        "source": {
            "code_repository": "https://git.example/fraud/scorer",
            "code_commit": f"{i:07x}",
            "datasets": [{"name": "train", "uri": f"s3://data/train-{i % 9}"}],
        },
    }


def newest_tokens(tokens: list[str]) -> str:
    """The newest consistency token of each model and source (a model's revisions only grow)."""
    newest: dict[str, tuple[int, str]] = {}
    for token in tokens:
        for part in token.split(","):
            head, _, revision = part.strip().rpartition(".")
            if head and revision.isdigit() and int(revision) >= newest.get(head, (-1, ""))[0]:
                newest[head] = (int(revision), part.strip())
    return ",".join(part for _, part in newest.values())


class Writer:
    """The bench team's writes over HTTP; each answer's consistency token is kept for the round's settle."""

    def __init__(self, stack: EmbeddedStack, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        self.registration = httpx.AsyncClient(base_url=stack.url("registration"), headers=headers, timeout=60)
        self.tracker = httpx.AsyncClient(base_url=stack.url("deploy-tracker"), headers=headers, timeout=60)
        self.query = httpx.AsyncClient(base_url=stack.url("query"), headers=headers, timeout=60)
        self.tokens: list[str] = []
        self.events = 0

    async def close(self) -> None:
        for client in (self.registration, self.tracker, self.query):
            await client.aclose()

    def _kept(self, answer: httpx.Response) -> None:
        self.events += 1
        if token := answer.headers.get(CONSISTENCY):
            self.tokens.append(token)

    async def register(self, model: str, body: dict[str, Any]) -> httpx.Response:
        answer = ok(await self.registration.post(f"/v1/models/{TEAM}/{model}/versions", json=body), 201)
        self._kept(answer)
        return answer

    async def alias(self, model: str, alias: str, version: str) -> None:
        path = f"/v1/models/{TEAM}/{model}/aliases/{alias}"
        self._kept(ok(await self.registration.put(path, json={"version": version})))

    async def approve(self, model: str, version: str) -> None:
        path = f"/v1/models/{TEAM}/{model}/versions/{version}/approval"
        self._kept(ok(await self.registration.put(path, json={"status": "approved", "comment": "benchmarked"})))

    async def report(self, model: str, version: str, environment: str, status: str = "deployed") -> None:
        body = {"team": TEAM, "name": model, "version": version, "environment": environment, "status": status}
        body["occurred_at"] = datetime.now(UTC).isoformat()
        answer = ok(await self.tracker.post("/v1/deployments/events", json=body, headers={"Prefer": "wait=30"}))
        if answer.json().get("outcome") != "applied":
            raise RuntimeError(f"report of {version} in {environment}: {answer.text}")
        self._kept(answer)

    async def settle(self, model: str) -> datetime:
        """Wait until the query has applied every write so far, then note (and return) an instant after them."""
        tokens, self.tokens = newest_tokens(self.tokens), []
        headers = {CONSISTENCY: tokens} if tokens else {}
        for _ in range(10):  # 503 while the query has not applied them within its wait
            answer = await self.query.get(f"/v1/models/{TEAM}/{model}", headers=headers)
            if answer.status_code != 503:
                break
        ok(answer)
        await asyncio.sleep(0.005)  # the instant lies strictly between this round and the next
        moment = datetime.now(UTC)
        await asyncio.sleep(0.005)
        return moment


async def write_round(writer: Writer, versions: list[str], first: int) -> None:
    """A round's 50 events: its versions registered, then aliases moved, approvals and rollouts side by side."""
    await asyncio.gather(*(writer.register(MODEL, version_body(v, first + i)) for i, v in enumerate(versions)))

    async def moves(alias: str) -> None:
        for version in versions:
            await writer.alias(MODEL, alias, version)

    async def approvals() -> None:
        for version in versions:
            await writer.approve(MODEL, version)

    async def rollout(environment: str) -> None:
        for version in versions:
            await writer.report(MODEL, version, environment)

    await asyncio.gather(*map(moves, ALIASES), approvals(), *map(rollout, ENVIRONMENTS))


async def write_history(writer: Writer, rounds: int) -> list[datetime]:
    """The long history: ``rounds`` rounds of 50 events; the instant after each."""
    instants = []
    for r in range(rounds):
        await write_round(writer, [f"{r + 1}.{i}.0" for i in range(PER_ROUND)], r * PER_ROUND)
        instants.append(await writer.settle(MODEL))
    return instants


def getting(
    http: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None
) -> Callable[[int], Awaitable[httpx.Response]]:
    """One GET of ``path``, the same each call (for :func:`timed`)."""

    async def send(_: int) -> httpx.Response:
        return await http.get(path, params=params)

    return send


async def timed(send: Callable[[int], Awaitable[httpx.Response]], count: int, warm: int = 3) -> list[float]:
    """Milliseconds of ``count`` calls, one at a time (``send`` gets the call's index), after ``warm`` untimed."""
    for i in range(warm):
        ok(await send(i))
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        answer = await send(i)
        latencies.append((time.perf_counter() - started) * 1000)
        ok(answer)
    return latencies


def in_process(call: Callable[[], object], count: int) -> list[float]:
    call()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def reads_of_the_past(http: httpx.AsyncClient, instants: list[datetime], args: argparse.Namespace) -> list[Row]:
    version = f"/v1/models/{TEAM}/{MODEL}/versions/1.0.0"
    distinct = [at.isoformat() for at in instants]
    plain = await timed(getting(http, version), args.reads)
    misses = await timed(lambda i: http.get(version, params={"as_of": distinct[i % len(distinct)]}), args.misses, 0)
    repeated = distinct[len(distinct) // 2]
    hits = await timed(getting(http, version, {"as_of": repeated}), args.reads)
    events = len(instants) * 50
    model = f"/v1/models/{TEAM}/{MODEL}"
    pages = {
        "alias history, first page": f"{model}/aliases/{ALIASES[0]}/history",
        "environment timeline, first page": f"{model}/environments/{ENVIRONMENTS[0]}/timeline",
        "model timeline, first page": f"{model}/timeline",
    }
    sizes = {
        "alias history, first page": f"{len(instants) * PER_ROUND} moves of the alias",
        "environment timeline, first page": f"{len(instants) * PER_ROUND} changes there",
        "model timeline, first page": f"{len(instants) * PER_ROUND * (len(ALIASES) + 1 + len(ENVIRONMENTS)):,} entries",
    }
    rows: list[Row] = [
        ("get a version", plain, f"the model has {events:,} events"),
        (
            "get a version as_of, distinct instants",
            misses,
            f"cache misses: {len(distinct)} instants in turn, each replays up to {events:,} events",
        ),
        ("get a version as_of, one instant again", hits, "cache hits (mid-history instant)"),
    ]
    for what, path in pages.items():
        answered = (await http.get(path, params={"limit": 100})).json()
        latencies = await timed(getting(http, path, {"limit": 100}), args.reads // 2)
        rows.append((what, latencies, f"limit 100 ({len(answered['items'])} items) of {sizes[what]}"))
    names = [f"{1 + r * len(instants) // 10}.{r % PER_ROUND}.0" for r in range(10)]
    for count in (2, 10):
        chosen = ",".join(names[:count] if count == 10 else [names[0], names[-1]])
        latencies = await timed(getting(http, f"{model}/compare", {"versions": chosen}), args.reads // 2)
        rows.append((f"compare {count} versions", latencies, "metrics, tags, lineage, approval, deployments"))
    return rows


async def signed_registrations(writer: Writer, count: int) -> list[Row]:
    """Registration with a signature and without, alternately, one client; and the check alone in process."""
    with tempfile.TemporaryDirectory(prefix="history-bench-") as folder:
        root = Path(folder)
        private = ec.generate_private_key(ec.SECP256R1())
        (root / "key.pem").write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (root / "model" / "weights").mkdir(parents=True)
        (root / "model" / "config.json").write_text('{"trees": 300}')
        (root / "model" / "weights" / "booster.bin").write_bytes(bytes(range(256)) * 4096)
        signature = sign_model(root / "model", root / "key.pem")
    path = f"/v1/teams/{TEAM}/signing-keys"
    trusted = ok(await writer.registration.post(path, json={"name": "release", "public_key": public.decode()}), 201)
    key_id = trusted.json()["key_id"]
    plain: list[float] = []
    signed: list[float] = []
    kinds: list[tuple[str, dict[str, Any], list[float]]] = [
        ("unsigned", {}, plain),
        ("signed", {"provenance": {"signature": signature}}, signed),
    ]
    for i in range(count + 3):
        for model, extra, latencies in kinds:
            body = version_body(f"1.{i}.0", i) | extra
            started = time.perf_counter()
            answer = await writer.register(model, body)
            if i >= 3:  # the first few warm the connection and the team's keys
                latencies.append((time.perf_counter() - started) * 1000)
            if extra and not answer.json()["provenance"]["verified"]:
                raise RuntimeError(f"signed registration not verified: {answer.text}")
    record = {"_id": key_id, "name": "release", "public_key": public.decode()}
    keys = [TrustedKey.of(record)]
    now = datetime.now(UTC)
    checks = in_process(lambda: verify(signature, keys, now=now), count * 5)
    files = len(verify(signature, keys, now=now)["manifest"]["files"])
    return [
        ("register a version, no signature", plain, "HTTP, one client, alternating with the next row"),
        ("register a version, signed (P-256)", signed, f"verified against the team's key; manifest of {files} files"),
        ("verify a signature (in process)", checks, "registration.provenance.verify: parse, key, ECDSA, statement"),
    ]


async def evidence_rows(stack: EmbeddedStack, writer: Writer, key: str, args: argparse.Namespace) -> list[Row]:
    """A version with about ``--entries`` audit entries; its bundle exported, and checked offline."""
    await writer.register(EVIDENCE, version_body("1.0.0", 0))
    await writer.register(EVIDENCE, version_body("1.1.0", 1))
    await writer.approve(EVIDENCE, "1.0.0")
    for i in range(10):
        await writer.alias(EVIDENCE, "champion", ("1.0.0", "1.1.0")[i % 2])
    for i in range(10):
        for environment in ENVIRONMENTS[:2]:
            await writer.report(EVIDENCE, "1.0.0", environment, ("deploying", "deployed")[i % 2])
    headers = {"Authorization": f"Bearer {key}"}
    path = f"/v1/audit/evidence/{TEAM}/{EVIDENCE}/1.0.0"
    version = f"/v1/models/{TEAM}/{EVIDENCE}/versions/1.0.0"
    async with httpx.AsyncClient(base_url=stack.url("audit"), headers=headers, timeout=60) as audit:

        async def entries() -> int:
            answer = await audit.get(path)
            return len(answer.json()["entries"]) if answer.status_code == 200 else 0

        await asyncio.sleep(2)  # the audit consumers linger up to 100 ms a batch
        for _ in range(max(0, args.entries - await entries())):  # reads of the version are audited too
            ok(await writer.query.get(version))
        deadline = time.monotonic() + 30
        while (found := await entries()) < args.entries and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        keys = [k["public_key"] for k in ok(await audit.get("/v1/audit/public-keys")).json()["keys"]]
        exports = await timed(getting(audit, path), args.exports)
        bundle = ok(await audit.get(path)).json()
    check = signature_check(keys)
    verdict = verify_bundle(bundle, check)
    if not verdict.ok:
        raise RuntimeError(f"the bundle does not verify: {verdict.first_broken}")
    verifies = in_process(lambda: verify_bundle(bundle, check), args.exports)
    size = len(httpx.Response(200, json=bundle).content) / 1024
    return [
        ("export an evidence bundle", exports, f"{found} entries, {verdict.links} links, {size:.0f} KiB"),
        (
            "verify_bundle (in process)",
            verifies,
            f"{verdict.signatures_checked} Ed25519 signatures, {verdict.records} records",
        ),
    ]


async def main(args: argparse.Namespace) -> int:
    keys: list[str] = []
    started = time.monotonic()

    async def before(stack: EmbeddedStack) -> None:
        keys.append(await make_key(stack))

    rows: list[Row] = []
    async with throwaway_stack("registry-history-bench-", before_services=before) as stack:
        console.print(f"stack up in {time.monotonic() - started:.0f}s")
        writer = Writer(stack, keys[0])
        try:
            seeded = time.monotonic()
            instants = await write_history(writer, args.rounds)
            console.print(f"{writer.events:,} events written in {time.monotonic() - seeded:.0f}s")
            quiet = await until_quiet(stack, timeout=20)
            console.print(f"the stack went quiet in {quiet:.0f}s")
            rows += await reads_of_the_past(writer.query, instants, args)
            rows += await signed_registrations(writer, args.registrations)
            rows += await evidence_rows(stack, writer, keys[0], args)
        finally:
            await writer.close()
    table = Table(
        title=f"History and evidence (issue 27), embedded stack, one client; {time.monotonic() - started:.0f}s"
    )
    for column in ("what", "p50 ms", "p99 ms", "count", "notes"):
        table.add_column(column, justify="left" if column in ("what", "notes") else "right")
    for what, latencies, notes in rows:
        table.add_row(
            what, f"{percentile(latencies, 50):.2f}", f"{percentile(latencies, 99):.2f}", str(len(latencies)), notes
        )
    console.print(table)
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40, help="rounds of 50 events on the long-history model")
    parser.add_argument("--reads", type=int, default=200, help="timed reads per row (pages and compares: half)")
    parser.add_argument("--misses", type=int, default=80, help="as_of reads at distinct instants")
    parser.add_argument("--registrations", type=int, default=100, help="registrations signed, and unsigned")
    parser.add_argument("--entries", type=int, default=100, help="audit entries of the evidence bundle's version")
    parser.add_argument("--exports", type=int, default=30, help="bundle exports, and offline checks")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
