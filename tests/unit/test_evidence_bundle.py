"""Evidence bundles: the audit service builds one from its chains, and the contract's offline check finds any change."""

import asyncio
import copy
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from audit.entries import RECORD, Source, entry_for, with_record
from audit.evidence import evidence
from audit.links import Tail, Verifier, extend, must_be_signed, sign_entry
from audit.signing import KeyRing, SigningKey
from registry_cli.secrets import load_or_create
from registry_client.audit_keys import signature_check
from registry_client.cli.audit import verify_audit_bundle
from registry_client.cli.main import app
from registry_contract import messages
from registry_contract.audit_chain import BAD_ENTRY_SIGNATURE, BROKEN_LINK, EDITED
from registry_contract.envelope import CloudEvent
from registry_contract.evidence import EvidenceBundle, events_of, summarize
from registry_contract.evidence_check import (
    BAD_ANCHOR_SIGNATURE,
    BAD_ATTESTATION,
    OTHER_TEAM,
    OUT_OF_ORDER,
    RECORD_CHANGED,
    REPEATED_RECORD,
    SUMMARY_CHANGED,
    verify_bundle,
)

pytestmark = pytest.mark.unit
# An EC public key on a curve cryptography does not support (it raises UnsupportedAlgorithm).
BRAINPOOL_P160 = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MEIwFAYHKoZIzj0CAQYJKyQDAwIIAQEBAyoABAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
    "-----END PUBLIC KEY-----\n"
)
SIGNER = SigningKey.generate()
VERIFY = signature_check([SIGNER.public.raw.hex()])
TOPICS = {"events": "registry.events", "commands": "registry.commands", "deploy": "deploy.events", "access": "a"}
RECEIVED = datetime(2026, 11, 26, 12, tzinfo=UTC)
BASE: dict[str, Any] = {"model_id": "mid", "team": "fraud", "name": "m"}


class FakeCollection:
    """As much of a MongoDB collection as building a bundle asks of one: find, sort, limit, $in, $regex."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs, self.queries = docs, list[dict[str, Any]]()

    def find(self, query: dict[str, Any], projection: Any = None) -> "FakeCursor":
        self.queries.append(query)
        return FakeCursor([copy.deepcopy(doc) for doc in self.docs if _matches(doc, query)])


class FakeCursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def sort(self, key: str, direction: int) -> "FakeCursor":
        return FakeCursor(sorted(self.docs, key=lambda doc: doc[key], reverse=direction < 0))

    def limit(self, count: int) -> "FakeCursor":
        return FakeCursor(self.docs[:count])

    async def to_list(self) -> list[dict[str, Any]]:
        return self.docs

    def __aiter__(self) -> Any:
        async def each() -> Any:
            for doc in self.docs:
                yield doc

        return each()


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, condition in query.items():
        value = doc.get(key)
        if isinstance(condition, dict) and "$in" in condition:
            if value not in condition["$in"]:
                return False
        elif isinstance(condition, dict) and "$gte" in condition:
            if value is None or value < condition["$gte"]:
                return False
        elif isinstance(condition, dict) and "$regex" in condition:
            if not isinstance(value, str) or not re.search(condition["$regex"], value):
                return False
        elif value != condition:
            return False
    return True


def event_entry(topic: str, offset: int, ce_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The entry (with its record) of a service's event, as the audit subscriber makes it."""
    event = CloudEvent(source="/registration", type=ce_type, data=data)
    value, headers = event.to_kafka()
    key = f"{data['team']}/{data.get('name')}".encode()
    source = Source.of(topic, 0, offset, key, value, headers)
    entry = entry_for(source, event=event, error=None, received_at=RECEIVED + timedelta(seconds=offset), signed=True)
    return with_record(entry, key, value, headers)


def chain_of(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Entries chained and signed as the store does, the records kept beside them, and the chain's head."""
    tail, records = Tail(), []
    for entry in entries:
        tail = extend(tail, entry, retention=None)
        if must_be_signed(tail.seq):
            sign_entry(SIGNER, entry)
        if RECORD in entry:
            records.append({"_id": entry["_id"]} | entry.pop(RECORD))
    return entries, records, {"_id": entries[0]["chain"]} | tail.head(SIGNER, entries[0]["chain"])


def history() -> dict[str, FakeCollection]:
    """A registry.events chain of 70 entries: team fraud's version 1.4.0 among another team's entries."""
    ours = {
        3: (messages.MODEL_VERSION_REGISTERED, BASE | {"version": "1.4.0", "source": {"code_commit": "abc1234"}}),
        10: (messages.VERSION_APPROVAL_CHANGED, BASE | {"version": "1.4.0", "from": "pending", "to": "approved"}),
        11: (messages.MODEL_VERSION_REGISTERED, BASE | {"version": "1.5.0"}),
        63: (messages.VERSION_LIFECYCLE_CHANGED, BASE | {"version": "1.4.0", "from": "staging", "to": "production"}),
        40: (messages.ALIAS_SET, BASE | {"alias": "champion", "version": "1.5.0", "previous_version": "1.4.0"}),
        66: (
            messages.DEPLOYMENT_STATUS_CHANGED,
            BASE | {"version": "1.4.0", "environment": "prod", "status": "deployed", "overall_status": "deployed"},
        ),
    }
    entries = []
    for offset in range(70):
        ce_type, data = ours.get(offset, (messages.MODEL_VERSION_REGISTERED, {"team": "other", "name": "secret"}))
        entries.append(event_entry("registry.events", offset, ce_type, {"version": "1.4.0"} | data))
    log, records, head = chain_of(entries)
    command = event_entry("registry.commands", 0, messages.SET_APPROVAL, BASE | {"version": "1.4.0"})
    commands, _, command_head = chain_of([command])
    return {
        "audit_log": FakeCollection(log + commands),
        "audit_records": FakeCollection(records),
        "audit_heads": FakeCollection([head, command_head]),
    }


def build(db: dict[str, FakeCollection] | None = None, **where: str) -> EvidenceBundle | None:
    subject = {"team": "fraud", "name": "m", "version": "1.4.0"} | where
    made = evidence(db or history(), Verifier(KeyRing.of(SIGNER)), SIGNER, topics=TOPICS, **subject)  # type: ignore[arg-type]
    return asyncio.run(made)


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    made = build()
    assert made is not None
    loaded: dict[str, Any] = json.loads(made.model_dump_json())
    return loaded


class TestBuildingABundle:
    def test_it_holds_the_versions_history_and_only_the_owning_teams_entries(self, bundle: dict[str, Any]) -> None:
        summary = bundle["summary"]
        assert summary["registration"]["data"]["version"] == "1.4.0"
        assert summary["lineage"]["source"] == {"code_commit": "abc1234"}
        assert summary["approval"] == "approved" and len(summary["aliases"]) == 1
        assert summary["deployments"]["prod"]["status"] == "deployed"
        assert {entry["team"] for entry in bundle["entries"]} == {"fraud"}
        assert len(bundle["entries"]) == 6  # 5 events (not 1.5.0's registration) and the command
        assert len(summary["lifecycle"]) == 1
        assert "other" not in json.dumps(bundle) and "secret" not in json.dumps(bundle)
        assert bundle["attestation"] is not None and not bundle["truncated"]

    def test_each_entry_links_to_a_signed_entry_or_the_head(self, bundle: dict[str, Any]) -> None:
        assert {(a["chain"], a["seq"], a["kind"]) for a in bundle["anchors"]} == {
            ("registry.events:0", 64, "entry"),
            ("registry.events:0", 70, "head"),
            ("registry.commands:0", 1, "head"),
        }
        assert [link["seq"] for link in bundle["links"]][:3] == [5, 6, 7]  # after the registration, at seq 4

    def test_the_entries_cap_truncates_and_says_so(self) -> None:
        made = asyncio.run(
            evidence(
                history(),  # type: ignore[arg-type]
                Verifier(KeyRing.of(SIGNER)),
                SIGNER,
                team="fraud",
                name="m",
                version="1.4.0",
                topics=TOPICS,
                limit=2,
            )
        )
        assert made is not None and made.truncated and len(made.entries) == 2 and made.omitted == 4
        assert verify_bundle(made, VERIFY).ok

    def test_a_version_the_log_has_nothing_about_has_no_bundle(self) -> None:
        assert build(version="9.9.9") is None

    def test_a_model_the_log_has_nothing_about_has_no_bundle_without_scanning_accesses(self) -> None:
        db = history()
        assert build(db, name="unknown") is None
        assert [query.get("model") for query in db["audit_log"].queries] == ["fraud/unknown"]

    def test_event_entries_without_a_kept_record_are_listed_unrecorded(self) -> None:
        db = history()
        approval = next(d["_id"] for d in db["audit_log"].docs if d["type"] == messages.VERSION_APPROVAL_CHANGED)
        db["audit_records"].docs = [r for r in db["audit_records"].docs if r["_id"] != approval]  # not kept
        made = build(db)
        assert made is not None and made.unrecorded == [approval] and made.summary.approval is None
        verdict = verify_bundle(made, VERIFY)
        assert verdict.ok and verdict.unrecorded == [approval]

    def test_a_chain_edited_in_the_database_is_not_attested(self) -> None:
        db = history()
        db["audit_log"].docs[20]["detail"] = "edited"  # another team's entry between ours and seq 64
        made = build(db)
        assert made is not None and made.attestation is None and "entry 21" in (made.problem or "")
        assert not verify_bundle(made, VERIFY).ok


class TestKeepingRecords:
    def test_a_services_model_event_keeps_its_record_and_the_record_is_its_entrys_id(self) -> None:
        entry = event_entry("registry.events", 7, messages.MODEL_VERSION_REGISTERED, BASE | {"version": "1.0.0"})
        record = entry[RECORD]
        assert set(record) == {"key", "value", "headers"} and record["value"].startswith(b"{")

    def test_unproven_events_events_without_a_model_and_credentials_are_never_kept(self) -> None:
        event = CloudEvent(source="/x", type=messages.MODEL_VERSION_REGISTERED, data=BASE | {"version": "1.0.0"})
        value, headers = event.to_kafka()
        unproven = entry_for(
            Source.of("registry.events", 0, 1, None, value, headers), event=event, error=None, received_at=RECEIVED
        )
        assert RECORD not in with_record(unproven, None, value, headers)
        signed = entry_for(
            Source.of("registry.events", 0, 1, None, value, headers),
            event=event,
            error=None,
            received_at=RECEIVED,
            signed=True,
        )
        assert RECORD not in with_record(signed, None, value, [*headers, ("Authorization", b"Bearer mr_x")])
        assert RECORD not in with_record(signed | {"model": None}, None, value, headers)


class TestVerifyingABundle:
    def test_a_genuine_bundle_verifies_with_its_signatures_checked(self, bundle: dict[str, Any]) -> None:
        verdict = verify_bundle(bundle, VERIFY)
        assert verdict.ok, verdict.first_broken
        assert verdict.signatures_checked >= 4 and verdict.signatures_unchecked == 0

    def test_without_a_key_signatures_are_counted_unchecked(self, bundle: dict[str, Any]) -> None:
        verdict = verify_bundle(bundle)
        assert verdict.ok and verdict.signatures_checked == 0 and verdict.signatures_unchecked >= 4

    def test_changing_any_field_of_any_entry_names_that_entry(self, bundle: dict[str, Any]) -> None:
        for index, entry in enumerate(bundle["entries"]):
            for field, value in entry.items():
                forged = copy.deepcopy(bundle)
                forged["entries"][index][field] = _changed(field, value)
                verdict = verify_bundle(forged, VERIFY)
                assert not verdict.ok, (index, field)
                broken = verdict.first_broken
                assert broken is not None
                assert (broken.section, broken.index) == ("entries", index), (field, broken)

    def test_an_edited_entry_is_reported_as_edited(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        forged["entries"][1]["detail"] = "version 9.9.9"
        assert _problem(forged) == EDITED

    def test_an_entry_relabelled_as_another_teams_is_refused(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        forged["entries"][0]["team"] = "other"
        assert _problem(forged) == OTHER_TEAM

    def test_a_removed_entry_fails(self, bundle: dict[str, Any]) -> None:
        for index in range(len(bundle["entries"])):
            forged = copy.deepcopy(bundle)
            del forged["entries"][index]
            assert not verify_bundle(forged, VERIFY).ok, index

    def test_a_removed_entry_between_two_others_is_a_missing_link(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        removed = next(i for i, e in enumerate(forged["entries"]) if e["seq"] == 11)  # the approval, before 64
        del forged["entries"][removed]
        forged["records"] = [r for r in forged["records"] if r["entry_id"] != bundle["entries"][removed]["id"]]
        verdict = verify_bundle(forged, VERIFY)
        assert verdict.first_broken is not None and verdict.first_broken.section == "links"
        assert verdict.first_broken.seq == 11

    def test_reordered_entries_fail(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        forged["entries"][1], forged["entries"][2] = forged["entries"][2], forged["entries"][1]
        assert _problem(forged) == OUT_OF_ORDER

    def test_an_altered_link_hash_breaks_the_chain_there(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        forged["links"][3]["hash"] = "f" * 64
        verdict = verify_bundle(forged, VERIFY)
        assert verdict.first_broken is not None and verdict.first_broken.problem == BROKEN_LINK
        assert verdict.first_broken.seq == bundle["links"][3]["seq"] + 1

    def test_forged_signatures_fail(self, bundle: dict[str, Any]) -> None:
        forger = SigningKey.generate()
        forged = copy.deepcopy(bundle)
        forged["attestation"] = forger.sign("evidence", {"proof": "x"})
        assert _problem(forged) == BAD_ATTESTATION
        forged = copy.deepcopy(bundle)
        forged["anchors"][0]["sig"] = forger.sign(forged["anchors"][0]["kind"], forged["anchors"][0]["fields"])
        assert _problem(forged) == BAD_ANCHOR_SIGNATURE
        forged = copy.deepcopy(bundle)
        signed = next(i for i, e in enumerate(forged["entries"]) if e["sig"])
        forged["entries"][signed]["sig"] = {"kid": SIGNER.public.kid, "sig": "00" * 64}
        assert _problem(forged) == BAD_ENTRY_SIGNATURE

    def test_a_record_whose_data_changed_fails(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        record = forged["records"][0]
        record["value"] = record["value"][:-4] + ("AAAA" if record["value"][-4:] != "AAAA" else "BBBB")
        assert _problem(forged) == RECORD_CHANGED

    def test_an_edited_summary_fails(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        forged["summary"]["approval"] = "rejected"
        assert _problem(forged) == SUMMARY_CHANGED

    def test_a_record_taken_out_with_the_summary_recomputed_fails(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        approval = next(e["id"] for e in forged["entries"] if e["type"] == messages.VERSION_APPROVAL_CHANGED)
        forged["records"] = [r for r in forged["records"] if r["entry_id"] != approval]
        model = EvidenceBundle.model_validate(forged)
        summary = summarize(events_of(model.records, model.entries), "fraud", "m", "1.4.0")
        forged["summary"] = summary.model_dump(mode="json")
        assert forged["summary"]["approval"] is None  # the approval is gone from what the bundle says
        assert _problem(forged) == BAD_ATTESTATION
        forged["unrecorded"] = [approval]  # nor does calling it unrecorded help
        assert _problem(forged) == BAD_ATTESTATION

    def test_a_repeated_record_fails(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        forged["records"].append(copy.deepcopy(forged["records"][0]))
        assert _problem(forged) == REPEATED_RECORD

    def test_an_entry_listed_unrecorded_must_be_the_bundles_and_have_no_record(self, bundle: dict[str, Any]) -> None:
        forged = copy.deepcopy(bundle)
        forged["unrecorded"] = [forged["records"][0]["entry_id"]]
        assert _problem(forged) == "listed without a record, but it has one"
        forged["unrecorded"] = ["f" * 40]
        assert _problem(forged) == "names no entry in the bundle"

    def test_what_is_not_a_bundle_says_so(self) -> None:
        verdict = verify_bundle({"format": "registry.evidence/1"})
        assert verdict.first_broken is not None and verdict.first_broken.section == "bundle"


class TestTheCommand:
    def test_verify_bundle_exits_0_when_valid_1_when_broken_and_2_when_unreadable(
        self, bundle: dict[str, Any], tmp_path: Path
    ) -> None:
        runner, file = CliRunner(), tmp_path / "bundle.json"
        file.write_text(json.dumps(bundle))
        key = ["--public-key", SIGNER.public.raw.hex()]
        result = runner.invoke(app, ["audit", "verify", "--bundle", str(file), *key])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ok"] is True
        file.write_text(json.dumps(bundle).replace('"approved"', '"rejected"', 1))
        result = runner.invoke(app, ["audit", "verify", "--bundle", str(file), *key])
        assert result.exit_code == 1 and json.loads(result.stdout)["first_broken"]["problem"] == SUMMARY_CHANGED
        file.write_text("not json")
        assert runner.invoke(app, ["audit", "verify", "--bundle", str(file), *key]).exit_code == 2

    def test_without_the_stack_the_clients_own_verify_checks_bundles_only(
        self, bundle: dict[str, Any], tmp_path: Path
    ) -> None:
        client_only = typer.Typer()
        client_only.command()(verify_audit_bundle)
        file = tmp_path / "bundle.json"
        file.write_text(json.dumps(bundle))
        result = CliRunner().invoke(client_only, ["--bundle", str(file), "--public-key", SIGNER.public.raw.hex()])
        assert result.exit_code == 0 and json.loads(result.stdout)["signatures_checked"] >= 4
        unchecked = CliRunner().invoke(client_only, ["--bundle", str(file), "--no-signature-check"])
        assert unchecked.exit_code == 0 and "not checked" in json.loads(unchecked.stdout)["signatures"]
        assert CliRunner().invoke(client_only, []).exit_code == 2  # no bundle: walking the database is the stack's

    def test_a_bundle_whose_signatures_nobody_checks_does_not_pass_unless_asked(
        self, bundle: dict[str, Any], tmp_path: Path
    ) -> None:
        file = tmp_path / "bundle.json"
        file.write_text(json.dumps(bundle))
        no_stack = ["--data-dir", str(tmp_path)]  # the local stack's command: no stack here, no key to default to
        result = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(file), *no_stack])
        assert result.exit_code == 2 and "--no-signature-check" in result.output and '"ok"' not in result.output
        both = ["--public-key", SIGNER.public.raw.hex(), "--no-signature-check"]
        assert CliRunner().invoke(app, ["audit", "verify", "--bundle", str(file), *both]).exit_code == 2

    def test_the_local_stacks_command_checks_with_the_stacks_own_audit_key_by_default(
        self, bundle: dict[str, Any], tmp_path: Path
    ) -> None:
        file = tmp_path / "bundle.json"
        file.write_text(json.dumps(bundle))
        made = load_or_create(tmp_path / "stack")
        (tmp_path / "stack" / "secrets.json").write_text(
            json.dumps(made.__dict__ | {"audit_signing_key": SIGNER.seed_hex()})
        )
        result = CliRunner().invoke(
            app, ["audit", "verify", "--bundle", str(file), "--data-dir", str(tmp_path / "stack")]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["signatures_checked"] >= 4

    def test_a_key_given_without_the_audit_extra_exits_2_instead_of_being_ignored(
        self, bundle: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        file = tmp_path / "bundle.json"
        file.write_text(json.dumps(bundle))
        monkeypatch.setitem(sys.modules, "registry_client.audit_keys", None)  # cryptography not installed
        result = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(file), "--public-key", "ab" * 32])
        assert result.exit_code == 2 and "registry-client[audit]" in result.output

    def test_a_pem_key_of_a_type_the_library_cannot_read_is_a_usage_error(
        self, bundle: dict[str, Any], tmp_path: Path
    ) -> None:
        file = tmp_path / "bundle.json"
        file.write_text(json.dumps(bundle))
        result = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(file), "--public-key", BRAINPOOL_P160])
        assert result.exit_code == 2 and "not an Ed25519 public key" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def _problem(forged: dict[str, Any]) -> str | None:
    verdict = verify_bundle(forged, VERIFY)
    return verdict.first_broken.problem if verdict.first_broken else None


def _changed(field: str, value: Any) -> Any:
    """``value`` changed, keeping its type where it has one."""
    if field in ("received_at", "expires_at", "prev_expires_at"):
        return "2026-01-01T00:00:00.001Z"
    if field == "sig":
        return {"kid": SIGNER.public.kid, "sig": "00" * 64}
    if field == "claims":
        return {"team": "x"}
    if isinstance(value, bool) or value is None:
        return 1 if field in ("v", "prev_expiring_from") else "x"
    if isinstance(value, int):
        return value + 1
    return value[:-1] + ("y" if value[-1:] != "y" else "z") if value else "x"
