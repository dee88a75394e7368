"""Memory of the query service's read model per 100,000 versions, and how fast events are applied.

Applies ``model_version_registered`` events (the full public version each carries, with tags,
metrics, parameters and a source, as producers send them), each decoded from its Kafka record as
the service receives it, to a fresh
:class:`~query.projection.model.ReadModel` in this process, then prints what the model holds
(``tracemalloc``) and what the process grew by (RSS). No stack is started: the model is the same
object the service keeps, so this is the number to size the query service's memory with.

    .venv/bin/python bench/projection_memory.py --models 10000 --versions-per-model 10
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from query.projection.apply import apply_event
from query.projection.model import ReadModel
from registry_contract import messages
from registry_contract.envelope import CloudEvent, decode
from registry_contract.ids import model_id

REGISTRATION = "/registry/registration"


def registered(team: str, name: str, version: str, at: datetime, revision: int) -> CloudEvent:
    """One registration event, with fields of the size producers typically send."""
    data = {
        "model_id": model_id(team, name),
        "team": team,
        "name": name,
        "version": version,
        "framework": "xgboost",
        "framework_version": "2.1.1",
        "artifact_uri": f"s3://ml-models/{team}/{name}/{version}/model.tar.gz",
        "artifact_digest": "sha256:" + "ab" * 32,
        "deployment_targets": ["sagemaker", "kubernetes"],
        "description": f"{name} retrained on the week's data",
        "tags": {"owner": "alice", "stage": "candidate", "dataset": "card-tx-2026w48"},
        "metrics": {"auc": 0.931, "precision": 0.88, "recall": 0.79},
        "parameters": {"max_depth": "6", "eta": "0.1"},
        "lifecycle": "active",
        "status": "registered",
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
        "created_by": "k-bench01",
        "source": {"run_id": f"run-{revision}", "experiment": "weekly", "datasets": []},
    }
    return CloudEvent(
        source=REGISTRATION,
        type=messages.MODEL_VERSION_REGISTERED,
        time=at,
        subject=f"{team}/{name}",
        data=data,
        revision=revision,
    )


def rss_mb() -> float:
    """This process's peak resident set, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--versions-per-model", type=int, default=10)
    args = parser.parse_args()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        registered(f"team-{m % 50}", f"model-{m}", f"1.{v}.0", start + timedelta(seconds=m * 100 + v), 1 + m * 100 + v)
        for m in range(args.models)
        for v in range(args.versions_per_model)
    ]
    # As the service receives them: Kafka records, decoded one by one (what the read model keeps
    # of an event is then the decoded copy, with its own key strings, not the bench's literals).
    records = [event.to_kafka() for event in events]
    del events
    gc.collect()
    before_rss = rss_mb()
    tracemalloc.start()
    model = ReadModel()
    began = time.perf_counter()
    for payload, headers in records:
        apply_event(model, decode(payload, headers))
    seconds = time.perf_counter() - began
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    versions = len(records)
    rows = [
        ("versions applied", f"{versions:,}"),
        ("events applied per second", f"{versions / seconds:,.0f}"),
        ("read model held (tracemalloc)", f"{held / 2**20:,.0f} MB"),
        ("per 100,000 versions", f"{held / 2**20 * 100_000 / versions:,.0f} MB"),
        ("process RSS growth (peak)", f"{rss_mb() - before_rss:,.0f} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    print("| measure | value |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
