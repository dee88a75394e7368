"""A deterministic catalogue of realistic models, as the registry stores them (model and version documents).

    generate()                      # 324 models of 12 teams, 1 to 6 versions each
    generate(replicas=31, versions_per_model=10)   # ~10,000 models / 100,000 versions for the benchmark

Every model belongs to a family (a use case, see :mod:`tests.relevance.families`) and is one of its
variants; judged queries say which families and variants are relevant, never which documents the
index happened to return. The same seed always gives the same catalogue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from registry_contract.documents import Document
from registry_contract.ids import model_id, version_id
from registry_contract.versioning import precedence_key
from tests.relevance.families import BOILERPLATE, ENVIRONMENTS, FAMILIES, OWNERS, Family

SEED = 20_240_611
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
ADVANCEMENT = {"registered": 0, "retired": 1, "rolled_back": 2, "failed": 3, "deploying": 4, "deployed": 5}
TEAMS = tuple(sorted({family.team for family in FAMILIES}))


@dataclass(frozen=True)
class CatalogueModel:
    """One generated model: its stored documents and what it is about (for judging relevance)."""

    model: Document
    versions: list[Document]
    family: Family
    variant: str

    @property
    def name(self) -> str:
        return str(self.model["name"])


def generate(*, seed: int = SEED, replicas: int = 1, versions_per_model: int | None = None) -> list[CatalogueModel]:
    """Every variant of every family, ``replicas`` times (copies after the first get a numeric suffix)."""
    rng = random.Random(seed)
    models: list[CatalogueModel] = []
    for copy in range(replicas):
        for family in FAMILIES:
            for index, (suffix, phrase) in enumerate(family.variants):
                name = f"{family.slug}-{suffix}" + (f"-{copy + 1}" if copy else "")
                count = versions_per_model or rng.choice((1, 2, 2, 3, 3, 4, 5, 6))
                framework = family.frameworks[(index + copy) % len(family.frameworks)]
                models.append(_model(rng, family, name, phrase, framework, count, suffix))
    return models


def _model(
    rng: random.Random, family: Family, name: str, where: str, framework: str, count: int, variant: str
) -> CatalogueModel:
    created = EPOCH + timedelta(days=rng.randrange(0, 400), minutes=rng.randrange(0, 1440))
    tags = _tags(rng, family, variant)
    versions = [_version(rng, family, name, where, framework, tags, i, count, created) for i in range(count)]
    _deploy(rng, versions, family)
    latest = max((v for v in versions if not v["prerelease"]), key=lambda v: v["version_key"])
    model: Document = {
        "_id": model_id(family.team, name),
        "team": family.team,
        "name": name,
        "latest_version": latest["version"],
        "version_count": len(versions),
        "framework": latest["framework"],
        "deployment_targets": list(latest["deployment_targets"]),
        "description": latest["description"],
        "tags": dict(latest["tags"]),
        "readers": _readers(rng, family.team),
        "created_at": created,
        "updated_at": max(v["updated_at"] for v in versions),
    }
    if rng.random() < 0.3:
        model["documentation"] = _documentation(rng, family, where)
    return CatalogueModel(model, versions, family, variant)


def _tags(rng: random.Random, family: Family, variant: str) -> dict[str, str]:
    tags = {"owner": rng.choice(OWNERS), "domain": family.domain, "variant": variant}
    tags["pii"] = "true" if family.pii else "false"
    tags["tier"] = rng.choice(("critical", "standard", "standard", "experimental"))
    if rng.random() < 0.4:
        tags["cost_center"] = f"cc-{rng.randrange(100, 999)}"
    return tags


def _version(
    rng: random.Random,
    family: Family,
    name: str,
    where: str,
    framework: str,
    tags: dict[str, str],
    index: int,
    count: int,
    created: datetime,
) -> Document:
    version = f"{1 + index // 3}.{index % 3}.0" + ("-rc.1" if index == count - 1 and count > 3 else "")
    at = created + timedelta(days=21 * index, hours=rng.randrange(0, 24))
    details = rng.sample(family.details, k=min(len(family.details), rng.choice((1, 2))))
    text = " ".join([family.summary.format(where=where), *details, rng.choice(BOILERPLATE)])
    return {
        "_id": version_id(family.team, name, version),
        "model_id": model_id(family.team, name),
        "team": family.team,
        "name": name,
        "version": version,
        "version_key": precedence_key(version),
        "prerelease": "-" in version,
        "framework": framework,
        "artifact_uri": f"s3://ml-models/{family.team}/{name}/{version}/model.tar.gz",
        "deployment_targets": list(family.targets[: rng.choice((1, len(family.targets)))]),
        "description": text,
        "tags": dict(tags),
        "metrics": {metric: round(rng.uniform(low, high), 4) for metric, low, high in family.metrics},
        "lifecycle": "active",
        "status": "registered",
        "environments": {},
        "created_at": at,
        "updated_at": at,
    }


def _deploy(rng: random.Random, versions: list[Document], family: Family) -> None:
    """Older versions deprecated, archived or retired; the newest ones deployed, deploying or failed."""
    for age, version in enumerate(reversed(versions)):
        if age >= 2:
            version["lifecycle"] = rng.choice(("deprecated", "archived", "active"))
        environments = _environments(rng, age)
        at = version["updated_at"] + timedelta(days=1)
        version["environments"] = {
            env: {
                "status": status,
                "occurred_at": at,
                "report_id": f"r-{rng.getrandbits(40):x}",
                "target": family.targets[0],
                "updated_at": at,
            }
            for env, status in environments.items()
        }
        version["status"] = max(environments.values(), key=ADVANCEMENT.__getitem__, default="registered")
        version["updated_at"] = at if environments else version["updated_at"]


def _environments(rng: random.Random, age: int) -> dict[str, str]:
    roll = rng.random()
    if age == 0:
        if roll < 0.55:
            return {"staging": "deployed", "prod": "deployed"}
        if roll < 0.7:
            return {"staging": "deploying"}
        return {"dev": "failed"} if roll < 0.8 else {}
    if age == 1:
        return {"prod": rng.choice(("retired", "rolled_back", "deployed")), "staging": "retired"}
    return {rng.choice(ENVIRONMENTS): "retired"} if roll < 0.5 else {}


def _readers(rng: random.Random, team: str) -> list[str]:
    shared = rng.sample([t for t in TEAMS if t != team], k=rng.choice((0, 0, 0, 1, 2)))
    return sorted({team, *shared})


def _documentation(rng: random.Random, family: Family, where: str) -> str:
    sections: list[tuple[str, Any]] = [
        ("Intended use", family.summary.format(where=where)),
        ("How it works", " ".join(family.details)),
        ("Evaluation", ", ".join(f"{metric} between {low} and {high}" for metric, low, high in family.metrics)),
        ("Limitations", rng.choice(BOILERPLATE)),
    ]
    return "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
