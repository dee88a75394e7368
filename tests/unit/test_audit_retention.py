"""Expiring audit entries: a chain whose oldest access entries expired verifies; any other gap does not."""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audit.chain import BAD_HEAD_SIGNATURE, ChainKey, Tail, Verdict, Verifier, extend, verify_chain
from audit.entries import Source, entry_for
from audit.signing import KeyRing, SigningKey
from registry_contract import messages
from tests.factories import command_event

pytestmark = pytest.mark.unit
KEY = ChainKey(secrets.token_bytes(32))  # the legacy chain key
SIGNER = SigningKey.generate()
VERIFIER = Verifier(KeyRing.of(SIGNER), legacy=KEY)
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
RETENTION = timedelta(days=90)
ACCESS, COMMANDS = "registry.access", "registry.commands"


def entry(topic: str, offset: int, received_at: datetime) -> dict[str, Any]:
    data = {"principal": "k1", "team": "fraud", "method": "GET", "path": f"/v1/models/fraud/m{offset}", "status": 200}
    event = command_event(messages.ACCESS_READ, data, event_id=f"e{offset}")
    value, headers = event.to_kafka()
    source = Source.of(topic, 0, offset, b"fraud", value, headers)
    return entry_for(source, event=event, error=None, received_at=received_at, signed=True)


def chained(
    ages: list[timedelta], *, topic: str = ACCESS, retention: timedelta | None = RETENTION, tail: Tail | None = None
) -> tuple[list[dict[str, Any]], Tail]:
    """Entries received ``ages`` before ``NOW`` (oldest first), chained as the store chains them."""
    tail = tail or Tail()
    made = []
    for age in ages:
        made.append(entry(topic, tail.offset + 1, NOW - age))
        tail = extend(tail, made[-1], retention=retention)
    return made, tail


def verdict(entries: list[dict[str, Any]], tail: Tail, *, chain: str = f"{ACCESS}:0") -> Verdict:
    return verify_chain(VERIFIER, chain, entries, tail.head(SIGNER, chain), now=NOW)


def days(*values: int) -> list[timedelta]:
    return [timedelta(days=value) for value in values]


class TestChaining:
    def test_an_access_entry_expires_its_retention_after_it_was_received(self) -> None:
        [first], _ = chained(days(10))
        assert first["expires_at"] == NOW - timedelta(days=10) + RETENTION
        assert "prev_expires_at" not in first and first["v"] == 4

    def test_an_entry_of_any_other_topic_never_expires(self) -> None:
        entries, tail = chained(days(200, 100), topic=COMMANDS, retention=None)
        assert all("expires_at" not in e and "prev_expires_at" not in e for e in entries)
        assert tail.expires_at is None

    def test_expiry_never_decreases_along_a_chain(self) -> None:
        # A shorter retention, or a writer with a slower clock, would otherwise let a newer entry
        # expire before an older one and leave a hole no entry vouches for.
        first, tail = chained(days(10))
        second, _ = chained(days(0), retention=timedelta(days=1), tail=tail)
        assert second[0]["expires_at"] == first[0]["expires_at"]
        assert second[0]["prev_expires_at"] == first[0]["expires_at"]


class TestExpiredPrefix:
    def test_a_chain_whose_oldest_entries_expired_verifies(self) -> None:
        entries, tail = chained(days(120, 110, 100, 10, 5))
        result = verdict(entries[3:], tail)  # the three older than 90 days are gone
        assert result.ok and result.entries == 2

    def test_a_chain_whose_every_entry_expired_verifies_by_its_sealed_head(self) -> None:
        _, tail = chained(days(120, 110, 100))
        assert verdict([], tail).ok

    def test_expired_entries_not_yet_removed_verify_too(self) -> None:
        entries, tail = chained(days(120, 110, 10))
        assert verdict(entries, tail).ok

    def test_a_gap_of_expired_entries_after_entries_that_never_expire_verifies(self) -> None:
        # Entries chained before retention existed (or while it was off) stay; later ones expire.
        kept, tail = chained(days(300, 200), retention=None)
        expiring, tail = chained(days(120, 100, 10), tail=tail)
        assert verdict(kept + expiring[2:], tail).ok


class TestRemovalsStillFound:
    def test_a_recent_prefix_cut_is_reported(self) -> None:
        entries, tail = chained(days(30, 20, 10, 5))
        result = verdict(entries[2:], tail)
        assert (
            not result.ok
            and result.broken
            and (result.broken["seq"], result.broken["problem"])
            == (
                1,
                "entry missing",
            )
        )

    def test_a_prefix_cut_one_entry_past_the_expired_ones_is_reported(self) -> None:
        entries, tail = chained(days(120, 100, 60, 10))
        result = verdict(entries[3:], tail)
        assert not result.ok and result.broken and result.broken["seq"] == 1

    def test_a_deleted_entry_in_the_middle_is_reported_where_it_was(self) -> None:
        entries, tail = chained(days(120, 100, 30, 20, 10))
        result = verdict(entries[2:3] + entries[4:], tail)  # expired prefix gone, and seq 4 deleted
        assert not result.ok and result.broken and result.broken["seq"] == 4

    def test_removed_entries_that_never_expire_are_reported_though_later_ones_expired(self) -> None:
        kept, tail = chained(days(300, 200), retention=None)
        expiring, tail = chained(days(120, 100, 10), tail=tail)
        result = verdict(kept[:1] + expiring[2:], tail)  # seq 2 never expires: its removal is no expiry
        assert not result.ok and result.broken and result.broken["seq"] == 2

    def test_a_removed_tail_is_reported_unless_it_expired(self) -> None:
        entries, tail = chained(days(120, 10, 5))
        result = verdict(entries[:2], tail)
        assert not result.ok and result.broken and result.broken["seq"] == 3

    def test_a_head_that_claims_an_earlier_expiry_is_not_believed(self) -> None:
        _, tail = chained(days(30, 20))
        chain = f"{ACCESS}:0"
        forged = tail.head(SIGNER, chain) | {"expires_at": NOW - timedelta(days=1)}
        result = verify_chain(VERIFIER, chain, [], forged, now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["problem"]) == (2, BAD_HEAD_SIGNATURE)

    def test_an_edited_expiry_is_found_at_that_entry(self) -> None:
        entries, tail = chained(days(120, 100, 10, 5))
        entries[3]["prev_expires_at"] = NOW - timedelta(days=1)  # to pass off entry 3 as expired
        result = verdict(entries[:2] + entries[3:], tail)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["entry_id"]) == (4, entries[3]["_id"])
        assert result.broken["problem"] == "hash does not match (entry edited)"

    def test_a_gap_in_a_chain_that_never_expires_is_reported(self) -> None:
        entries, tail = chained(days(300, 200, 100), topic=COMMANDS, retention=None)
        result = verdict(entries[1:], tail, chain=f"{COMMANDS}:0")
        assert not result.ok and result.broken and result.broken["seq"] == 1


class TestOlderEntries:
    def test_legacy_entries_before_the_migration_point_still_verify_with_the_chain_key(self) -> None:
        entries, _ = chained(days(3, 2, 1), retention=None)
        prev = Tail()
        for made in entries:  # version 2: keyed, no expiry fields in the canonical form
            made["v"], made["prev_hash"] = 2, prev.hash
            made["hash"] = KEY.link(prev.hash, made)
            prev = Tail(made["seq"], made["hash"], made["offset"])
        anchored = Tail(prev.seq, prev.hash, prev.offset, anchor_seq=prev.seq, anchor_hash=prev.hash)
        assert verify_chain(VERIFIER, f"{ACCESS}:0", entries, anchored.head(SIGNER, f"{ACCESS}:0"), now=NOW).ok
        entries[1]["detail"] = "edited"
        result = verify_chain(VERIFIER, f"{ACCESS}:0", entries, anchored.head(SIGNER, f"{ACCESS}:0"), now=NOW)
        assert not result.ok and result.broken and result.broken["seq"] == 2
