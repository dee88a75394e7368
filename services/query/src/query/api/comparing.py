"""Versions side by side and their differences from the base version, from stored documents. No I/O here.

Only what the registry recorded is compared: a metric one version lacks is listed as missing,
never taken as zero; a version registered without lineage has none to differ in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from registry_contract.compare_views import (
    ComparedDataset,
    ComparedLineage,
    ComparedProvenance,
    ComparedVersion,
    MappingDifferences,
    MetricDelta,
    ValueChange,
    VersionComparison,
    VersionDifferences,
)
from registry_contract.documents import Document
from registry_contract.views import Approval, EnvironmentStatus, VersionParent


def compare(model: Document, versions: list[Document]) -> VersionComparison:
    """``versions`` of ``model`` (the base first, each with its ``aliases``) side by side, with their differences."""
    shown = [compared(doc) for doc in versions]
    base = shown[0]
    environments = sorted({env for version in shown for env in version.environments})
    return VersionComparison(
        model_id=str(model["_id"]),
        team=str(model["team"]),
        name=str(model["name"]),
        base=base.version,
        versions=shown,
        environments=environments,
        differences=[differences(base, other) for other in shown[1:]],
    )


def compared(doc: Document) -> ComparedVersion:
    """The compared view of a stored version document."""
    return ComparedVersion(
        version=doc["version"],
        prerelease=bool(doc.get("prerelease")),
        created_at=doc.get("created_at"),
        created_by=doc.get("created_by"),
        lifecycle=doc.get("lifecycle") or "active",
        aliases=list(doc.get("aliases") or []),
        framework=doc.get("framework"),
        artifact_digest=doc.get("artifact_digest"),
        metrics={str(k): float(v) for k, v in _mapping(doc.get("metrics")).items() if _finite(v)},
        parameters={str(k): str(v) for k, v in _mapping(doc.get("parameters")).items()},
        tags={str(k): str(v) for k, v in _mapping(doc.get("tags")).items()},
        lineage=lineage(doc),
        approval=Approval.model_validate(_mapping(doc.get("approval"))),
        status=doc.get("status") or "registered",
        environments={
            str(env): EnvironmentStatus.model_validate(state)
            for env, state in _mapping(doc.get("environments")).items()
            if isinstance(state, Mapping)
        },
        provenance=provenance(doc.get("provenance")),
    )


def lineage(doc: Document) -> ComparedLineage:
    """A version's recorded source (run, code, datasets) and parent."""
    source = _mapping(doc.get("source"))
    parent = doc.get("parent")
    datasets = [
        ComparedDataset(uri=str(d["uri"]), digest=d.get("digest"), name=d.get("name"))
        for d in source.get("datasets") or []
        if isinstance(d, Mapping) and d.get("uri")
    ]
    return ComparedLineage(
        parent=VersionParent.model_validate(parent) if isinstance(parent, Mapping) else None,
        datasets=datasets,
        code_repository=source.get("code_repository"),
        code_commit=source.get("code_commit"),
        run_id=source.get("run_id"),
        run_url=source.get("run_url"),
        experiment=source.get("experiment"),
    )


def provenance(recorded: Any) -> ComparedProvenance | None:
    """The verification a version carries, read defensively (older versions have none)."""
    if not isinstance(recorded, Mapping):
        return None
    signer = _mapping(recorded.get("signer"))
    key_id = signer.get("key_id")
    return ComparedProvenance(
        verified=recorded.get("verified") is True,
        signer=_text(signer.get("name")) or _text(key_id),
        key_id=_text(key_id),
        algorithm=_text(recorded.get("algorithm")),
        manifest_digest=_text(recorded.get("manifest_digest")),
    )


def differences(base: ComparedVersion, other: ComparedVersion) -> VersionDifferences:
    """How ``other`` differs from ``base``: metrics, tags, parameters, datasets, code, parent, approval, lifecycle."""
    names = sorted(set(base.metrics) | set(other.metrics))
    before, after = base.lineage, other.lineage
    base_sets, other_sets = _datasets(before.datasets), _datasets(after.datasets)
    found = VersionDifferences(
        version=other.version,
        metrics=[metric_delta(name, base.metrics.get(name), other.metrics.get(name)) for name in names],
        metrics_only_in_base=[name for name in names if name not in other.metrics],
        metrics_only_in_version=[name for name in names if name not in base.metrics],
        tags=mapping_differences(base.tags, other.tags),
        parameters=mapping_differences(base.parameters, other.parameters),
        datasets_added=[dataset for key, dataset in other_sets.items() if key not in base_sets],
        datasets_removed=[dataset for key, dataset in base_sets.items() if key not in other_sets],
        code_commit=_change(before.code_commit, after.code_commit),
        code_repository=_change(before.code_repository, after.code_repository),
        parent=_change(_parent(before.parent), _parent(after.parent)),
        approval=_change(base.approval.status, other.approval.status),
        lifecycle=_change(base.lifecycle, other.lifecycle),
    )
    return found.model_copy(update={"changed": _changed(found)})


def metric_delta(name: str, base: float | None, value: float | None) -> MetricDelta:
    """One metric beside the base's: the change and the change relative to the base's magnitude."""
    if base is None or value is None:
        return MetricDelta(name=name, base=base, value=value)
    # Rounded so that 0.95 - 0.93 reads 0.02, not 0.019999999999999907 (as the model card does).
    # Near the float's limits a change can overflow (1.7e308 - -1.7e308, or 1.0 / 5e-324): null then.
    delta = _rounded(value - base)
    relative = _rounded(delta / abs(base)) if delta is not None and base != 0 else None
    return MetricDelta(name=name, base=base, value=value, delta=delta, relative=relative)


def _differs(metric: MetricDelta) -> bool:
    """Whether both versions have the metric and it changed (a change too large for a float: changed)."""
    both = metric.base is not None and metric.value is not None
    return bool(metric.delta) or (both and metric.delta is None)


def _rounded(number: float) -> float | None:
    """``number`` rounded to 12 decimals, or ``None`` when it is not finite."""
    return round(number, 12) if math.isfinite(number) else None


def mapping_differences(base: dict[str, str], other: dict[str, str]) -> MappingDifferences:
    """Keys ``other`` added to, removed from or changed in ``base``."""
    return MappingDifferences(
        added={k: v for k, v in sorted(other.items()) if k not in base},
        removed={k: v for k, v in sorted(base.items()) if k not in other},
        changed={k: ValueChange(base=base[k], value=v) for k, v in sorted(other.items()) if k in base and base[k] != v},
    )


def _changed(found: VersionDifferences) -> list[str]:
    names = []
    if any(_differs(m) for m in found.metrics) or found.metrics_only_in_base or found.metrics_only_in_version:
        names.append("metrics")
    for field in ("tags", "parameters"):
        mapping: MappingDifferences = getattr(found, field)
        if mapping.added or mapping.removed or mapping.changed:
            names.append(field)
    if found.datasets_added or found.datasets_removed:
        names.append("datasets")
    names += [f for f in ("code_commit", "code_repository", "parent", "approval", "lifecycle") if getattr(found, f)]
    return names


def _datasets(datasets: list[ComparedDataset]) -> dict[tuple[str, str | None], ComparedDataset]:
    """Datasets by uri and digest: the same uri with another digest is another dataset."""
    return {(d.uri, d.digest): d for d in datasets}


def _parent(parent: VersionParent | None) -> str | None:
    return f"{parent.team}/{parent.name}@{parent.version}" if parent else None


def _change(base: Any, value: Any) -> ValueChange | None:
    return None if base == value else ValueChange(base=base, value=value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
