"""Model cards from stored documents: content, metric changes, what is not recorded, safe markdown."""

from datetime import UTC, datetime
from typing import Any

import pytest

from query.api.card_markdown import card_markdown
from query.api.card_routes import prefers_markdown
from query.api.cards import build_card, described_version
from registry_contract.documents import Document
from registry_contract.versioning import precedence_key

pytestmark = pytest.mark.unit
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def model(**fields: Any) -> Document:
    base = {"_id": "m-1", "team": "fraud", "name": "card-scorer", "created_at": T0, "updated_at": T0}
    return {"latest_version": "1.1.0", "version_count": 2, "framework": "xgboost", **base, **fields}


def version(number: str, **fields: Any) -> Document:
    return {
        "_id": f"m-1:{precedence_key(number)}",
        "model_id": "m-1",
        "team": "fraud",
        "name": "card-scorer",
        "version": number,
        "version_key": precedence_key(number),
        "prerelease": "-" in number,
        "framework": "xgboost",
        "artifact_uri": f"s3://models/card-scorer/{number}/model.tar.gz",
        "lifecycle": "active",
        "created_at": T0,
        "updated_at": T0,
        **fields,
    }


def deployed(environment: str, status: str, report_id: str) -> dict[str, Any]:
    return {
        environment: {
            "status": status,
            "occurred_at": T0,
            "report_id": report_id,
            "target": "kubernetes",
            "updated_at": T0,
        }
    }


def report(report_id: str, status: str, previous: str | None, outcome: str = "applied") -> Document:
    return {"report_id": report_id, "status": status, "previous_status": previous, "outcome": outcome, "pipeline": "ci"}


RECORDED = model(
    owners=["alice", {"name": "Bo", "email": "bo@example.com"}],
    documentation="# Usage\n\nCall `score()`.",
    links={"repository": "https://git.example.com/fraud/card-scorer"},
)
LINEAGE = {
    "run_id": "run-42",
    "experiment": "card-fraud-2026",
    "code_commit": "0a1b2c3",
    "datasets": ["s3://data/train.parquet", {"name": "holdout", "uri": "s3://data/holdout", "digest": "sha256:ab"}],
}


class TestContent:
    def test_a_fully_recorded_model_fills_every_section(self) -> None:
        versions = [
            version("1.0.0", metrics={"auc": 0.93}),
            version(
                "1.1.0",
                metrics={"auc": 0.95},
                parameters={"max_depth": "6"},
                lineage=LINEAGE,
                tags={"domain": "payments"},
                description="Scores card transactions for fraud.",
                framework_version="2.0.3",
                artifact_digest="sha256:" + "0" * 64,
                environments=deployed("prod", "deployed", "r2"),
                status="deployed",
            ),
        ]
        reports = [report("r1", "deploying", None), report("r2", "deployed", "deploying")]
        card = build_card(RECORDED, versions, reports, None)
        assert card.version == "1.1.0"
        assert card.details.owners == ["alice", "Bo (bo@example.com)"]
        assert (card.details.framework, card.details.framework_version) == ("xgboost", "2.0.3")
        assert card.details.versions == ["1.1.0", "1.0.0"] and card.details.latest_version == "1.1.0"
        assert card.intended_use.documentation == "# Usage\n\nCall `score()`."
        assert card.training.parameters == {"max_depth": "6"}
        lineage = card.training.lineage
        assert lineage is not None and (lineage.run_id, lineage.code_commit) == ("run-42", "0a1b2c3")
        assert [(d.name, d.uri) for d in lineage.datasets] == [
            (None, "s3://data/train.parquet"),
            ("holdout", "s3://data/holdout"),
        ]
        [prod] = card.deployments.environments
        assert (prod.environment, prod.status, prod.previous_status, prod.pipeline) == (
            "prod",
            "deployed",
            "deploying",
            "ci",
        )
        assert card.deployments.reports_read == 2 and card.deployments.failed_reports == 0
        assert card.tags == {"domain": "payments"} and card.caveats == []
        assert card.not_recorded == ["intended_use.signature"]

    def test_a_model_with_only_a_registration_says_what_is_not_recorded(self) -> None:
        card = build_card(model(latest_version="1.0.0", version_count=1), [version("1.0.0")], None, None)
        assert card.training.lineage is None and card.deployments.environments == []
        assert card.deployments.reports_read is None
        assert set(card.not_recorded) >= {
            "details.owners",
            "intended_use.description",
            "intended_use.documentation",
            "metrics",
            "training.lineage",
            "deployments.environments",
            "tags",
        }
        text = card_markdown(card)
        for section in ("## Metrics", "### Lineage", "### Documentation", "## Tags"):
            assert text.split(section, 1)[1].lstrip().startswith("Not recorded."), section

    def test_an_explicit_version_is_described_and_one_not_read_is_refused(self) -> None:
        versions = [version("1.0.0", lifecycle="deprecated"), version("1.1.0")]
        card = build_card(model(), versions, [], "1.0.0")
        assert card.version == "1.0.0" and card.details.artifact_uri == "s3://models/card-scorer/1.0.0/model.tar.gz"
        assert "Version 1.0.0 is deprecated." in card.caveats
        assert "This card describes 1.0.0; the model's latest version is 1.1.0." in card.caveats
        with pytest.raises(ValueError):
            described_version(model(), versions, "3.0.0")

    def test_a_model_with_only_prereleases_is_described_by_its_latest_with_a_caveat(self) -> None:
        versions = [version("2.0.0-alpha"), version("2.0.0-rc.1")]
        card = build_card(model(latest_version="2.0.0-rc.1"), versions, None, None)
        assert card.version == "2.0.0-rc.1"
        assert (
            "The model has no stable release recorded: its latest version 2.0.0-rc.1 is a prerelease." in card.caveats
        )


class TestApprovalAndAliases:
    def test_each_version_shows_its_approval_and_aliases_and_the_described_one_its_decision(self) -> None:
        approval = {"status": "approved", "by": "fa000001", "at": T0, "comment": "reviewed | signed off"}
        versions = [version("1.0.0", approval={"status": "rejected", "by": "fa000001", "at": T0}), version("1.1.0")]
        aliased = model(aliases={"champion": "1.1.0", "candidate": "1.1.0", "legacy": "1.0.0"})
        card = build_card(aliased, [versions[0], version("1.1.0", approval=approval)], None, None)
        assert [(m.version, m.approval, m.aliases) for m in card.metrics] == [
            ("1.1.0", "approved", ["candidate", "champion"]),
            ("1.0.0", "rejected", ["legacy"]),
        ]
        assert (card.approval.status, card.approval.by, card.approval.comment) == (
            "approved",
            "fa000001",
            "reviewed | signed off",
        )
        assert card.aliases == {"candidate": "1.1.0", "champion": "1.1.0", "legacy": "1.0.0"}
        text = card_markdown(card).split("## Approval and aliases", 1)[1].split("\n## ", 1)[0]
        assert "This version: approved by key fa000001 at 2026-03-01T09:00:00" in text
        assert "reviewed \\| signed off" in text
        assert "| champion | 1.1.0 |" in text and "| legacy | 1.0.0 |" in text
        assert "| 1.1.0 | approved | candidate, champion |" in text and "| 1.0.0 | rejected | legacy |" in text
        older = build_card(aliased, versions, None, "1.0.0")
        assert older.approval.status == "rejected" and "Version 1.0.0 was rejected at approval." in older.caveats

    def test_a_version_never_decided_on_is_pending_and_a_model_without_aliases_says_so(self) -> None:
        card = build_card(model(latest_version="1.0.0"), [version("1.0.0")], None, None)
        assert (card.approval.status, card.aliases, card.metrics[0].aliases) == ("pending", {}, [])
        assert "This version: pending.\n\nAliases: none set." in card_markdown(card)


class TestMetrics:
    def test_each_version_shows_its_change_from_the_previous_by_precedence(self) -> None:
        versions = [  # deliberately out of order; 1.10.0 follows 1.9.0, not 1.1.0
            version("1.10.0", metrics={"auc": 0.95, "latency_ms": 12.0}),
            version("1.1.0", metrics={"auc": 0.90}),
            version("1.9.0", metrics={"auc": 0.93, "f1": 0.7}),
        ]
        card = build_card(model(latest_version="1.10.0", version_count=3), versions, None, None)
        rows = {m.version: (m.previous, m.changes) for m in card.metrics}
        assert [m.version for m in card.metrics] == ["1.10.0", "1.9.0", "1.1.0"]
        assert rows["1.10.0"] == ("1.9.0", {"auc": 0.02})
        assert rows["1.9.0"] == ("1.1.0", {"auc": 0.03})
        assert rows["1.1.0"] == (None, {})
        text = card_markdown(card)
        assert "| 1.10.0 | auc | 0.95 | +0.02 |" in text
        assert "| 1.10.0 | latency\\_ms | 12.0 | — |" in text  # no latency before 1.10.0
        assert "| 1.1.0 | auc | 0.9 | first version read |" in text

    def test_a_capped_read_says_how_many_versions_it_covers(self) -> None:
        card = build_card(model(version_count=120), [version("1.0.0"), version("1.1.0")], None, None)
        assert card.details.versions_truncated
        assert any("read the 2 newest of 120 versions" in caveat for caveat in card.caveats)
        assert "(the 2 newest of 120)" in card_markdown(card)


class TestDeployments:
    def test_failures_and_rollbacks_become_caveats_and_other_live_versions_are_listed(self) -> None:
        versions = [
            version("1.0.0", environments=deployed("prod", "deployed", "r0")),
            version(
                "1.1.0", environments={**deployed("prod", "failed", "r2"), **deployed("staging", "rolled_back", "r3")}
            ),
        ]
        reports = [
            report("r1", "deploying", None),
            report("r2", "failed", "deploying"),
            report("rx", "bogus", None, "rejected"),
        ]
        card = build_card(model(), versions, reports, None)
        assert [e.environment for e in card.deployments.environments] == ["prod", "staging"]
        assert card.deployments.failed_reports == 1 and card.deployments.reports_read == 3
        assert [(e.environment, e.version) for e in card.deployments.other_versions] == [("prod", "1.0.0")]
        assert "Version 1.1.0 failed to deploy in prod." in card.caveats
        assert "Version 1.1.0 was rolled back in staging." in card.caveats
        assert "1 of the last 3 deployment reports of 1.1.0 were failures." in card.caveats


class TestSafeMarkdown:
    HOSTILE = "<script>alert(1)</script> | *bold* [x](javascript:alert(1)) `code`"

    def test_user_text_cannot_inject_html_or_break_tables(self) -> None:
        versions = [
            version(
                "1.0.0",
                description=f"{self.HOSTILE}\n# not a heading\n---\n1. not a list\n    not code",
                tags={"note": self.HOSTILE, "a|b": "c"},
                parameters={"sql": "a | b"},
                metrics={"auc": 0.9},
            )
        ]
        card = build_card(model(latest_version="1.0.0", version_count=1), versions, None, None)
        text = card_markdown(card)
        assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "\\[x\\](javascript:alert(1))" in text and "\\*bold\\*" in text and "\\`code\\`" in text
        assert "\n\\# not a heading\n\\---\n1\\. not a list\nnot code" in text
        assert "| a\\|b | c |" in text and "| sql | a \\| b |" in text
        for line in text.splitlines():
            if line.startswith("| note "):
                # Every "|" of the value is escaped: the row still has exactly its two cells.
                assert line.replace("\\|", "").count("|") == 3

    def test_documentation_is_fenced_verbatim_even_when_it_contains_fences(self) -> None:
        doc = "Intro\n```\n<img src=x onerror=alert(1)>\n```\n````more"
        card = build_card(model(documentation=doc, latest_version="1.0.0"), [version("1.0.0")], None, None)
        text = card_markdown(card)
        assert f"`````markdown\n{doc}\n`````" in text  # a fence longer than any backtick run inside

    def test_a_signature_is_shown_as_json_in_a_fence(self) -> None:
        signature = {"inputs": [{"name": "<amount>", "type": "double"}]}
        card = build_card(model(latest_version="1.0.0"), [version("1.0.0", signature=signature)], None, None)
        assert '```json\n{\n  "inputs": [\n    {\n      "name": "<amount>"' in card_markdown(card)


class TestContentNegotiation:
    @pytest.mark.parametrize(
        ("accept", "markdown"),
        [
            (None, False),
            ("application/json", False),
            ("*/*", False),
            ("text/markdown", True),
            ("text/markdown, */*", True),
            ("text/*", True),
            ("application/json, text/markdown", False),
            ("application/json;q=0.5, text/markdown", True),
            ("text/markdown;q=0", False),
            ("text/markdown;q=bogus", False),
        ],
    )
    def test_markdown_only_when_ranked_above_json(self, accept: str | None, markdown: bool) -> None:
        assert prefers_markdown(accept) is markdown
