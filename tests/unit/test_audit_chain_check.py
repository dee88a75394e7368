"""The contract's offline check of a team's audit entries, and `registry audit check` over an export."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from audit.entries import Source, entry_for
from audit.links import Tail, extend, sign_entry
from audit.signing import KeyRing, SigningKey
from audit.views import entry_public
from registry_client.audit_keys import signature_check
from registry_client.cli.main import app
from registry_contract import messages
from registry_contract.audit_chain import (
    BAD_ENTRY_SIGNATURE,
    BROKEN_LINK,
    EDITED,
    SIGNED_EVERY,
    check_entries,
    link,
)
from tests.factories import command_event, register_data

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
SIGNER = SigningKey.generate()
KEYS = KeyRing.of(SIGNER)


def entry(offset: int) -> dict[str, Any]:
    event = command_event(messages.REGISTER_MODEL_VERSION, register_data("fraud", f"m{offset}"), event_id=f"e{offset}")
    value, headers = event.to_kafka()
    source = Source.of("registry.commands", 0, offset, b"k", value, headers)
    return entry_for(source, event=event, error=None, received_at=NOW - timedelta(days=1), signed=True)


def chain_of(count: int, *, after: int = 0) -> list[dict[str, Any]]:
    """``count`` entries written by the audit service's own code, seqs ``after + 1`` on, signed where due."""
    tail, made = Tail(seq=after, offset=after), []
    for _ in range(count):
        made.append(entry(tail.offset + 1))
        tail = extend(tail, made[-1], retention=None)
        if tail.seq % SIGNED_EVERY == 0:
            sign_entry(SIGNER, made[-1])
    return made


class TestCheckingEntries:
    def test_an_untouched_chain_passes_with_its_signatures_verified(self) -> None:
        entries = chain_of(4, after=SIGNED_EVERY - 2)
        verdict = check_entries(entries, KEYS.verify)
        assert verdict.ok and verdict.first_broken is None
        assert (verdict.entries, verdict.chains, verdict.signatures_checked) == (4, 1, 1)

    def test_public_entries_read_back_from_json_pass_like_stored_ones(self) -> None:
        lines = [entry_public(doc).model_dump_json() for doc in chain_of(3)]
        assert check_entries(json.loads(line) for line in lines).ok

    def test_an_edited_field_is_reported_as_that_entrys_hash(self) -> None:
        entries = chain_of(3)
        entries[1]["outcome"] = "rejected"
        broken = check_entries(entries).first_broken
        assert broken is not None
        assert (broken.seq, broken.entry_id, broken.problem) == (2, entries[1]["_id"], EDITED)

    def test_gaps_in_seq_are_other_teams_entries_and_not_a_break(self) -> None:
        entries = chain_of(5)
        del entries[2]
        assert check_entries(entries).ok

    def test_an_edited_prev_hash_breaks_the_link_even_when_the_hash_is_recomputed(self) -> None:
        entries = chain_of(3)
        entries[2]["prev_hash"] = "f" * 64
        entries[2]["hash"] = link(entries[2]["prev_hash"], entries[2])
        broken = check_entries(entries).first_broken
        assert broken is not None and (broken.seq, broken.problem) == (3, BROKEN_LINK)

    def test_a_signature_by_another_key_is_reported(self) -> None:
        entries = chain_of(1, after=SIGNED_EVERY - 1)
        sign_entry(SigningKey.generate(), entries[0])
        verdict = check_entries(entries, KEYS.verify)
        assert verdict.first_broken is not None and verdict.first_broken.problem == BAD_ENTRY_SIGNATURE

    def test_a_missing_signature_is_reported_even_without_keys(self) -> None:
        entries = chain_of(1, after=SIGNED_EVERY - 1)
        del entries[0]["sig"]
        assert check_entries(entries).first_broken is not None

    def test_without_a_verifier_signatures_are_counted_as_unchecked(self) -> None:
        verdict = check_entries(chain_of(2, after=SIGNED_EVERY - 1))
        assert verdict.ok and (verdict.signatures_checked, verdict.signatures_unchecked) == (0, 1)

    def test_legacy_entries_are_counted_as_unchecked(self) -> None:
        entries = chain_of(3)
        entries[0]["v"] = 3
        entries[0]["detail"] = "a legacy entry's contents need the chain key"
        verdict = check_entries(entries)
        assert verdict.ok and verdict.legacy_unchecked == 1

    def test_the_clients_verifier_accepts_the_services_signatures(self) -> None:
        entries = chain_of(1, after=SIGNED_EVERY - 1)
        verify = signature_check([SIGNER.public.raw.hex()])
        assert check_entries(entries, verify).signatures_checked == 1
        assert not check_entries(entries, signature_check([SigningKey.generate().public.raw.hex()])).ok


class TestTheCheckCommand:
    def export(self, tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
        path = tmp_path / "audit.ndjson"
        path.write_text("".join(entry_public(doc).model_dump_json() + "\n" for doc in entries))
        return path

    def test_an_untouched_export_exits_0_with_its_verdict(self, tmp_path: Path) -> None:
        path = self.export(tmp_path, chain_of(2, after=SIGNED_EVERY - 1))
        result = CliRunner().invoke(app, ["audit", "check", str(path), "--public-key", SIGNER.public.raw.hex()])
        assert result.exit_code == 0, result.output
        verdict = json.loads(result.stdout)
        assert verdict["ok"] and verdict["entries"] == 2 and verdict["signatures_checked"] == 1

    def test_an_edited_export_exits_1_naming_the_entry(self, tmp_path: Path) -> None:
        entries = chain_of(2)
        path = self.export(tmp_path, entries)
        first, rest = path.read_text().split("\n", 1)
        edited = json.loads(first)
        edited["outcome"] = edited["outcome"].swapcase()
        path.write_text(json.dumps(edited) + "\n" + rest)
        result = CliRunner().invoke(app, ["audit", "check", str(path)])
        assert result.exit_code == 1
        assert json.loads(result.stdout)["first_broken"]["entry_id"] == entries[0]["_id"]

    def test_without_public_keys_the_verdict_says_signatures_were_not_checked(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(app, ["audit", "check", str(self.export(tmp_path, chain_of(1)))])
        assert result.exit_code == 0 and "--public-key" in json.loads(result.stdout)["signatures"]
