"""Model cards from stored documents: the structured card and its markdown. No I/O here.

A card says only what the registry recorded: a field without data is listed in ``not_recorded``
and its markdown section says so, and every caveat is derived from a record (lifecycle,
prerelease, a rejection, a failed deployment), never written for the team.
"""

from __future__ import annotations

from typing import Any

from registry_contract.documents import Document
from registry_contract.versioning import precedence_key
from registry_contract.views import (
    Approval,
    CardDataset,
    CardDeployments,
    CardDetails,
    CardEnvironment,
    CardIntendedUse,
    CardLifecycle,
    CardLineage,
    CardTraining,
    CardVersionMetrics,
    ModelCard,
)

LIVE_STATUSES = ("deployed", "deploying")  # what "another version runs there" means


def build_card(
    model: Document, versions: list[Document], deployments: list[Document] | None, version: str | None
) -> ModelCard:
    """The card of ``version`` of ``model`` (default: its latest), from the versions and reports read.

    Args:
        model: the stored model document.
        versions: the versions read (any order); metrics changes compare neighbours by precedence.
        deployments: recent deployment reports of the described version, or ``None`` if none were read.
        version: the version to describe; it must be among ``versions`` (by SemVer precedence).

    Raises:
        ValueError: ``version`` is not among ``versions``.

    """
    ordered = sorted(versions, key=lambda doc: str(doc["version_key"]), reverse=True)
    described = described_version(model, ordered, version)
    doc = described or {}
    aliases = {str(k): str(v) for k, v in (model.get("aliases") or {}).items()}  # the model's: the authority
    details = CardDetails(
        model_id=model["_id"],
        team=model["team"],
        name=model["name"],
        owners=_names(model.get("owners")),
        framework=doc.get("framework") or model.get("framework"),
        framework_version=doc.get("framework_version"),
        artifact_uri=doc.get("artifact_uri"),
        artifact_digest=doc.get("artifact_digest"),
        registered_by=doc.get("created_by"),
        signed_by=_signed_by(doc.get("provenance")),
        version_created_at=doc.get("created_at"),
        version_updated_at=doc.get("updated_at"),
        model_created_at=model.get("created_at"),
        model_updated_at=model.get("updated_at"),
        latest_version=model.get("latest_version"),
        version_count=max(int(model.get("version_count") or 0), len(ordered)),
        versions=[v["version"] for v in ordered],
        versions_truncated=len(ordered) < int(model.get("version_count") or 0),
    )
    description = doc.get("description") or ""
    model_description = model.get("description") or None
    intended = CardIntendedUse(
        description=description,
        model_description=model_description if model_description != description else None,
        documentation=model.get("documentation") if isinstance(model.get("documentation"), str) else None,
        links=_links(model.get("links")),
        deployment_targets=list(doc.get("deployment_targets") or []),
        signature=doc.get("signature") or None,
    )
    card = ModelCard(
        version=doc.get("version"),
        details=details,
        intended_use=intended,
        metrics=_metrics(ordered, aliases),
        training=CardTraining(
            parameters={str(k): str(v) for k, v in (doc.get("parameters") or {}).items()},
            lineage=_lineage(doc.get("lineage") or {k: doc[k] for k in ("source", "parent") if doc.get(k)}),
        ),
        deployments=_deployments(doc, ordered, deployments),
        lifecycle=CardLifecycle(state=doc.get("lifecycle") or "active", versions_by_state=_by_state(ordered)),
        approval=Approval.model_validate(doc.get("approval") or {}),
        aliases=dict(sorted(aliases.items())),
        tags={str(k): str(v) for k, v in (doc.get("tags") or {}).items()},
    )
    return card.model_copy(update={"caveats": _caveats(card, ordered), "not_recorded": _not_recorded(card)})


def described_version(model: Document, versions: list[Document], version: str | None) -> Document | None:
    """The version a card describes: ``version``, else the model's latest, else its newest stable or newest.

    Raises:
        ValueError: ``version`` is not among ``versions``.

    """
    ordered = sorted(versions, key=lambda doc: str(doc["version_key"]), reverse=True)
    if version is not None:
        key = precedence_key(version)
        found = next((doc for doc in ordered if doc["version_key"] == key), None)
        if found is None:
            raise ValueError(f"version {version} is not among the versions read")
        return found
    latest = model.get("latest_version")
    by_name = next((doc for doc in ordered if doc["version"] == latest), None)
    stable = next((doc for doc in ordered if not doc.get("prerelease")), None)
    return by_name or stable or (ordered[0] if ordered else None)


def _metrics(ordered: list[Document], aliases: dict[str, str]) -> list[CardVersionMetrics]:
    rows = []
    for index, doc in enumerate(ordered):
        metrics = {str(k): float(v) for k, v in (doc.get("metrics") or {}).items()}
        previous = ordered[index + 1] if index + 1 < len(ordered) else None
        before = (previous or {}).get("metrics") or {}
        rows.append(
            CardVersionMetrics(
                version=doc["version"],
                prerelease=bool(doc.get("prerelease")),
                lifecycle=doc.get("lifecycle") or "active",
                approval=(doc.get("approval") or {}).get("status") or "pending",
                aliases=sorted(alias for alias, target in aliases.items() if target == doc["version"]),
                created_at=doc.get("created_at"),
                metrics=metrics,
                previous=previous["version"] if previous else None,
                # Rounded so that 0.95 - 0.93 reads 0.02, not 0.019999999999999907.
                changes={k: round(v - float(before[k]), 12) for k, v in metrics.items() if k in before},
            )
        )
    return rows


def _deployments(doc: Document, ordered: list[Document], reports: list[Document] | None) -> CardDeployments:
    by_report = {str(r.get("report_id")): r for r in reports or [] if r.get("outcome") == "applied"}
    described = [_environment(doc, env, state, by_report) for env, state in sorted(_states(doc).items())]
    others = [
        _environment(other, env, state, {})
        for other in ordered
        if other is not doc
        for env, state in sorted(_states(other).items())
        if state.get("status") in LIVE_STATUSES
    ]
    failed = sum(1 for r in reports or [] if r.get("outcome") == "applied" and r.get("status") == "failed")
    return CardDeployments(
        status=doc.get("status") or "registered",
        environments=described,
        other_versions=sorted(others, key=lambda e: e.environment),
        reports_read=None if reports is None else len(reports),
        failed_reports=failed,
    )


def _states(doc: Document) -> dict[str, Document]:
    return {str(k): v for k, v in (doc.get("environments") or {}).items() if isinstance(v, dict)}


def _environment(doc: Document, env: str, state: Document, by_report: dict[str, Document]) -> CardEnvironment:
    report = by_report.get(str(state.get("report_id")), {})
    return CardEnvironment(
        environment=env,
        version=doc["version"],
        status=str(state.get("status")),
        previous_status=report.get("previous_status"),
        changed_at=state.get("occurred_at"),
        recorded_at=state.get("updated_at"),
        target=state.get("target"),
        pipeline=report.get("pipeline"),
        run_id=report.get("run_id"),
        url=report.get("url"),
        report_id=state.get("report_id"),
    )


def _by_state(ordered: list[Document]) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for doc in ordered:
        states.setdefault(doc.get("lifecycle") or "active", []).append(doc["version"])
    return states


def _caveats(card: ModelCard, ordered: list[Document]) -> list[str]:
    """Statements the records support, most specific to the described version first."""
    found: list[str] = []
    version, latest = card.version, card.details.latest_version
    if version is None:
        return ["No version of this model was read."]
    if card.lifecycle.state != "active":
        found.append(f"Version {version} is {card.lifecycle.state}.")
    if _is_prerelease(version):
        found.append(f"Version {version} is a prerelease.")
    if card.approval.status == "rejected":
        found.append(f"Version {version} was rejected at approval.")
    if latest and _is_prerelease(latest):
        found.append(f"The model has no stable release recorded: its latest version {latest} is a prerelease.")
    if latest and latest != version:
        found.append(f"This card describes {version}; the model's latest version is {latest}.")
    for env in card.deployments.environments:
        if env.status in ("failed", "rolled_back"):
            verb = "failed to deploy" if env.status == "failed" else "was rolled back"
            found.append(f"Version {version} {verb} in {env.environment}.")
    deploys = card.deployments
    if deploys.failed_reports and deploys.reports_read:
        failed, read = deploys.failed_reports, deploys.reports_read
        found.append(f"{failed} of the last {read} deployment reports of {version} were failures.")
    for state in ("deprecated", "archived"):
        others = [v for v in card.lifecycle.versions_by_state.get(state, []) if v != version]
        if others:
            found.append(f"{state.capitalize()} versions: {', '.join(others)}.")
    if card.details.versions_truncated:
        found.append(
            f"The card read the {len(ordered)} newest of {card.details.version_count} versions; "
            "older ones are not in its metrics and lifecycle sections."
        )
    return found


def _signed_by(provenance: Any) -> str | None:
    """``name (fingerprint)`` of the key that verified the version's signature, if one did."""
    if not isinstance(provenance, dict) or provenance.get("verified") is not True:
        return None
    signer = provenance.get("signer") or {}
    return f"{signer.get('name')} ({signer.get('fingerprint')})"


def _is_prerelease(version: str) -> bool:
    return "-" in version.split("+", 1)[0]


def _not_recorded(card: ModelCard) -> list[str]:
    checks = {
        "details.owners": card.details.owners,
        "details.framework_version": card.details.framework_version,
        "details.artifact_digest": card.details.artifact_digest,
        "intended_use.description": card.intended_use.description or card.intended_use.model_description,
        "intended_use.documentation": card.intended_use.documentation,
        "intended_use.links": card.intended_use.links,
        "intended_use.signature": card.intended_use.signature,
        "metrics": any(m.metrics for m in card.metrics),
        "training.parameters": card.training.parameters,
        "training.lineage": card.training.lineage,
        "deployments.environments": card.deployments.environments,
        "tags": card.tags,
    }
    return [name for name, value in checks.items() if not value]


# --- reading fields another issue adds (owners, links, lineage), whatever shape they settle on ---


def _first(raw: Document, *keys: str) -> str | None:
    return next((str(raw[k]) for k in keys if isinstance(raw.get(k), str | int | float) and raw[k] != ""), None)


def _names(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    names = []
    for item in items:
        if isinstance(item, str) and item:
            names.append(item)
        elif isinstance(item, dict) and (name := _first(item, "name", "email", "team", "id")):
            email = _first(item, "email")
            names.append(f"{name} ({email})" if email and email != name else name)
    return names


def _links(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items() if isinstance(v, str)}
    links = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and (url := _first(item, "url", "href")):
            links[_first(item, "name", "title", "label", "rel") or url] = url
    return links


def _lineage(raw: Any) -> CardLineage | None:
    if not isinstance(raw, dict) or not raw:
        return None
    flat = {**raw, **(raw["source"] if isinstance(raw.get("source"), dict) else {})}
    parent = flat.get("parent")
    if isinstance(parent, dict):
        parent = f"{parent.get('team')}/{parent.get('name')}@{parent.get('version')}"
    lineage = CardLineage(
        run_id=_first(flat, "run_id", "training_run_id"),
        run_url=_first(flat, "run_url", "url"),
        experiment=_first(flat, "experiment", "experiment_id"),
        code_repository=_first(flat, "code_repository", "repository", "code_repo"),
        code_commit=_first(flat, "code_commit", "commit"),
        parent=parent if isinstance(parent, str) and parent else None,
        datasets=[d for d in map(_dataset, flat.get("datasets") or []) if d is not None],
    )
    return lineage if lineage.model_dump(exclude_defaults=True) else None


def _dataset(raw: Any) -> CardDataset | None:
    if isinstance(raw, str) and raw:
        return CardDataset(uri=raw)
    if isinstance(raw, dict):
        found = CardDataset(
            name=_first(raw, "name"), uri=_first(raw, "uri", "url", "path"), digest=_first(raw, "digest", "sha256")
        )
        return found if found.model_dump(exclude_defaults=True) else None
    return None
