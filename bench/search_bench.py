"""Benchmark of ranked search in one process (no stack needed); prints a table (not a test: no assertions).

    .venv/bin/python bench/search_bench.py            # 10,000 models / 100,000 versions
    .venv/bin/python bench/search_bench.py --help

1. Build: the generated catalogue scaled up (``tests.relevance.catalogue``), turned into search
   documents and indexed in memory, as the query service does at start-up after reading MongoDB.
2. Search latency of ``SearchIndex.search`` (hits, snippets, total and five facets): every judged
   query, as a platform admin and as one team, bare and with list filters.
3. Freshness: one model upserted and committed, as a projection applies one event.
4. Relevance: MRR and nDCG@10 of the judged queries, on the unit-test catalogue and at scale.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from stats import percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, when run as a script

from query.search import SearchFilters, SearchIndex, SearchRequest, SearchResult
from tests.relevance.catalogue import TEAMS, CatalogueModel, generate
from tests.relevance.judged import JUDGED
from tests.relevance.measures import build_index, documents, evaluate

console = Console()
BASE_MODELS = 324  # models of one copy of the catalogue
FILTERS = (
    SearchFilters(),
    SearchFilters(status="deployed"),
    SearchFilters(environment="prod", status="deployed"),
    SearchFilters(framework="xgboost"),
    SearchFilters(tags=("tier:critical",)),
)


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


def build(models: int, versions_per_model: int) -> tuple[SearchIndex, list[CatalogueModel], dict[str, float]]:
    catalogue = generate(replicas=-(-models // BASE_MODELS), versions_per_model=versions_per_model)[:models]
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    docs = documents(catalogue)
    projected = time.perf_counter()
    index = SearchIndex()
    index.upsert(docs)
    index.commit()
    done = time.perf_counter()
    del docs
    gc.collect()
    figures = {
        "documents_s": projected - started,
        "index_s": done - projected,
        "rss_before_mb": before,
        "rss_after_mb": rss_mb(),
    }
    return index, catalogue, figures


def requests(rounds: int) -> list[SearchRequest]:
    """Every judged query, as an admin and as a team, with each filter set in turn."""
    made = []
    for i in range(rounds):
        for j, judged in enumerate(JUDGED):
            readers = None if (i + j) % 2 else frozenset({TEAMS[(i + j) % len(TEAMS)]})
            made.append(SearchRequest(judged.query, readers, FILTERS[(i * 7 + j) % len(FILTERS)], limit=20))
    return made


def bench_search(index: SearchIndex, rounds: int) -> dict[str, Any]:
    batch = requests(rounds)
    for request in batch[: len(JUDGED)]:  # warm up
        index.search(request)
    latencies, totals = [], []
    for request in batch:
        started = time.perf_counter()
        result = index.search(request)
        latencies.append(time.perf_counter() - started)
        assert isinstance(result, SearchResult), result
        totals.append(result.total)
    ms = [value * 1000 for value in latencies]
    return {
        "requests": len(ms),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "mean_total": sum(totals) / len(totals),
    }


def bench_freshness(index: SearchIndex, catalogue: list[CatalogueModel], samples: int) -> tuple[float, float]:
    """One model changed, then committed and searchable: what one event costs the projection."""
    changed = documents(catalogue[:samples])
    latencies = []
    for doc in changed:
        started = time.perf_counter()
        index.upsert([doc])
        index.commit()
        latencies.append((time.perf_counter() - started) * 1000)
    return percentile(latencies, 50), percentile(latencies, 99)


def main(args: argparse.Namespace) -> int:
    console.print("relevance on the unit-test catalogue …")
    small = generate()
    small_eval = evaluate(build_index(small), small)
    console.print(f"building {args.models} models x {args.versions_per_model} versions …")
    index, catalogue, built = build(args.models, args.versions_per_model)
    console.print("searching …")
    search = bench_search(index, args.rounds)
    console.print("relevance at scale …")
    scale_eval = evaluate(index, catalogue)
    freshness = bench_freshness(index, catalogue, args.updates)
    versions = sum(len(m.versions) for m in catalogue)
    table = Table(title=f"Search benchmark ({len(catalogue)} models / {versions} versions, in process, this machine)")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("target", justify="right")
    table.add_row("project stored documents → search documents (s)", f"{built['documents_s']:.1f}", "")
    table.add_row("index and commit every model (s)", f"{built['index_s']:.1f}", "rebuild ≤ 30")
    s = search
    table.add_row(
        f"search p50 / p95 / p99 (ms), {s['requests']} requests with snippets, facets, filters",
        f"{s['p50']:.1f} / {s['p95']:.1f} / {s['p99']:.1f}",
        "≤ 10 / - / 30",
    )
    table.add_row("matches per request, mean", f"{s['mean_total']:.0f}", "")
    table.add_row("upsert one model + commit p50 / p99 (ms)", "{:.1f} / {:.1f}".format(*freshness), "")
    table.add_row(
        "process RSS before → after the index (MB)", f"{built['rss_before_mb']:.0f} → {built['rss_after_mb']:.0f}", ""
    )
    table.add_row(
        f"MRR / nDCG@10, {len(JUDGED)} judged queries, {len(small)} models",
        f"{small_eval.mrr:.3f} / {small_eval.ndcg:.3f}",
        "",
    )
    table.add_row(
        f"MRR / nDCG@10, same queries at {len(catalogue)} models", f"{scale_eval.mrr:.3f} / {scale_eval.ndcg:.3f}", ""
    )
    console.print(table)
    results = {
        "build": built,
        "search_ms": search,
        "upsert_commit_ms": freshness,
        "relevance": {"small": [small_eval.mrr, small_eval.ndcg], "scale": [scale_eval.mrr, scale_eval.ndcg]},
    }
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=2))
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--versions-per-model", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20, help="passes over the judged queries")
    parser.add_argument("--updates", type=int, default=200)
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main(parse()))
