"""The signed audit chain in memory: each forgery of issue 22 (finding 1) fails, naming the first bad entry."""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from audit.chain import (
    BAD_HEAD_SIGNATURE,
    LEGACY_AFTER_ANCHOR,
    ChainKey,
    Tail,
    Verifier,
    extend,
    verify_chain,
)
from audit.entries import Source, entry_for
from audit.links import canonical, link, sign_entry
from audit.signing import KeyRing, PublicKey, SigningKey
from registry_contract import messages
from shared.chassis.settings import ConfigurationError
from tests.factories import command_event, register_data

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
CHAIN = "registry.commands:0"
SIGNER = SigningKey.generate()
VERIFIER = Verifier(KeyRing.of(SIGNER))
_LEGACY_FIELDS = ("_id", "chain", "seq", "topic", "partition", "offset", "ce_id", "type", "source", "time")


def entry(offset: int, team: str = "fraud") -> dict[str, Any]:
    event = command_event(messages.REGISTER_MODEL_VERSION, register_data(team, f"m{offset}"), event_id=f"e{offset}")
    value, headers = event.to_kafka()
    source = Source.of("registry.commands", 0, offset, b"k", value, headers)
    return entry_for(source, event=event, error=None, received_at=NOW - timedelta(days=1), signed=True)


def chain_of(count: int, *, signer: SigningKey = SIGNER, tail: Tail | None = None) -> tuple[list[dict[str, Any]], Tail]:
    """``count`` entries appended one batch each (every entry signed), and the chain's tail."""
    tail, made = tail or Tail(), []
    for _ in range(count):
        made.append(entry(tail.offset + 1))
        tail = extend(tail, made[-1], retention=None)
        sign_entry(signer, made[-1])
    return made, tail


def unversioned_hash(prev_hash: str, doc: dict[str, Any]) -> str:
    """The plain SHA-256 link legacy (pre-keyed) entries had: what a forger can compute."""
    fields = (*_LEGACY_FIELDS, "actor", "team", "model", "outcome", "correlation_id", "causation_id", "detail")
    return hashlib.sha256(prev_hash.encode() + canonical(doc, fields)).hexdigest()


class TestSignedChain:
    def test_an_untouched_chain_verifies_with_the_public_key_alone(self) -> None:
        entries, tail = chain_of(5)
        offline = Verifier(KeyRing([PublicKey.parse(SIGNER.public.raw.hex())]))  # no secret at all
        result = verify_chain(offline, CHAIN, entries, tail.head(SIGNER, CHAIN), now=NOW)
        assert result.ok and result.entries == 5 and entries[0]["v"] == 4

    def test_a_v4_hash_is_plain_sha256_over_every_shown_field(self) -> None:
        [made], _ = chain_of(1)
        assert made["hash"] == link(made["prev_hash"], made)
        assert made["hash"] == hashlib.sha256(made["prev_hash"].encode() + canonical(made)).hexdigest()

    def test_dropping_v_and_recomputing_the_hashes_is_found_at_the_first_entry_changed(self) -> None:
        # Unkeyed SHA-256 is accepted only for entries written before versioning, never further down the chain.
        entries, tail = chain_of(5)
        prev = entries[1]["hash"]
        for doc in entries[2:]:
            del doc["v"], doc["sig"]
            doc["team"], doc["prev_hash"] = "mallory", prev
            doc["hash"] = prev = unversioned_hash(prev, doc)
        head = tail.head(SIGNER, CHAIN) | {"hash": prev}
        result = verify_chain(VERIFIER, CHAIN, entries, head, now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["entry_id"]) == (3, entries[2]["_id"])
        assert result.broken["problem"] == LEGACY_AFTER_ANCHOR

    @pytest.mark.parametrize("versioned", [True, False])
    def test_an_entry_appended_at_the_head_with_the_head_moved_is_found_at_that_entry(self, versioned: bool) -> None:
        # The head's MAC is checked wherever the head stands, the walk's end included.
        entries, tail = chain_of(3)
        forged = entry(3, team="risk") | {"outcome": "approved", "actor": "mallory"}
        moved = extend(tail, forged, retention=None)
        if not versioned:
            del forged["v"]
            forged["hash"] = unversioned_hash(tail.hash, forged)
        head = tail.head(SIGNER, CHAIN) | {"seq": moved.seq, "hash": forged["hash"], "offset": moved.offset}
        result = verify_chain(VERIFIER, CHAIN, [*entries, forged], head, now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["entry_id"]) == (4, forged["_id"])
        assert result.broken["problem"] == (BAD_HEAD_SIGNATURE if versioned else LEGACY_AFTER_ANCHOR)

    def test_a_head_signed_by_a_key_nobody_published_is_refused(self) -> None:
        entries, tail = chain_of(3)
        own = SigningKey.generate()
        result = verify_chain(VERIFIER, CHAIN, entries, tail.head(own, CHAIN), now=NOW)
        assert not result.ok and result.broken and result.broken["problem"] == BAD_HEAD_SIGNATURE

    def test_an_unsigned_head_is_refused_even_when_it_names_the_last_entry(self) -> None:
        entries, tail = chain_of(3)
        head = {k: v for k, v in tail.head(SIGNER, CHAIN).items() if k != "sig"}
        result = verify_chain(VERIFIER, CHAIN, entries, head, now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["entry_id"]) == (3, entries[2]["_id"])

    def test_an_entry_past_the_signed_head_is_named(self) -> None:
        entries, tail = chain_of(3)
        forged = entry(3, team="risk")
        extend(tail, forged, retention=None)
        result = verify_chain(VERIFIER, CHAIN, [*entries, forged], tail.head(SIGNER, CHAIN), now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["entry_id"]) == (4, forged["_id"])

    def test_a_deletion_passed_off_as_expiry_and_rehashed_is_found_at_the_first_entry_changed(self) -> None:
        # Deleting seq 3-4 and giving the neighbours a past expiry must not pass for retention.
        entries, tail = chain_of(6)
        past = NOW - timedelta(days=1)
        kept = entries[:2] + entries[4:]  # seq 3 and 4 deleted
        kept[1] |= {"expires_at": past}
        kept[2] |= {"prev_expires_at": past, "prev_expiring_from": 2}
        prev = kept[0]["hash"]
        for doc in kept[1:]:  # everything after recomputed, signatures stripped, as anyone can
            doc.pop("sig")
            doc["prev_hash"] = prev if doc["seq"] != 5 else doc["prev_hash"]
            doc["hash"] = prev = link(doc["prev_hash"], doc)
        head = tail.head(SIGNER, CHAIN) | {"hash": prev}
        result = verify_chain(VERIFIER, CHAIN, kept, head, now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["entry_id"]) == (2, entries[1]["_id"])
        assert "expiry" in result.broken["problem"]
        kept[1].pop("expires_at")  # only the entry after the gap claims it: the gap is named
        kept[1]["hash"] = link(kept[1]["prev_hash"], kept[1])
        result = verify_chain(VERIFIER, CHAIN, kept, head, now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["problem"]) == (3, "entry missing")

    def test_a_rehashed_deletion_in_an_expiring_chain_is_found_at_the_gap(self) -> None:
        made, tail = [], Tail()
        for offset in range(6):
            made.append(entry(offset))
            tail = extend(tail, made[-1], retention=timedelta(days=90))
            if offset % 3 == 2:  # signed points (every 64th in the store; any entry may carry one)
                sign_entry(SIGNER, made[-1])
        kept = made[:2] + made[4:]
        past = NOW - timedelta(days=1)
        kept[2] |= {"prev_expires_at": past}
        prev = kept[2]["prev_hash"]  # the entry after the gap keeps its link to the deleted one
        for doc in kept[2:]:
            doc["prev_hash"] = prev
            doc["hash"] = prev = link(prev, doc)
        result = verify_chain(VERIFIER, CHAIN, kept, tail.head(SIGNER, CHAIN), now=NOW)
        assert not result.ok and result.broken  # entry 2 has not expired: nothing after it can have
        assert (result.broken["seq"], result.broken["entry_id"]) == (3, made[4]["_id"])
        assert result.broken["problem"] == "entry missing"

    def expiring_chain(self, expired: int, live: int) -> tuple[list[dict[str, Any]], Tail]:
        """An access chain whose first ``expired`` entries expired an hour ago and the next ``live`` have not."""
        made, tail = [], Tail()
        for offset in range(expired + live):
            made.append(entry(offset))
            if offset >= expired:
                made[-1]["received_at"] = NOW
            tail = extend(tail, made[-1], retention=timedelta(hours=23) if offset < expired else timedelta(days=1))
        return made, tail

    def test_a_forged_entry_standing_among_expired_ones_is_found(self) -> None:
        # A v4 entry (unsigned seq, no expiry) set where entries expired is excused neither by its own
        # hashed expiry fields nor, for the gap after it, by the genuine entry's.
        made, tail = self.expiring_chain(6, 2)
        [forged] = [entry(40, team="mallory")]
        forged |= {"chain": made[0]["chain"], "v": 4, "seq": 4, "prev_hash": made[2]["hash"]}
        forged |= {"prev_expires_at": made[2]["expires_at"], "prev_expiring_from": 1}
        forged["hash"] = link(forged["prev_hash"], forged)
        head = tail.head(SIGNER, CHAIN)
        assert verify_chain(VERIFIER, CHAIN, made[6:], head, now=NOW).ok  # the expired prefix is excused
        result = verify_chain(VERIFIER, CHAIN, [forged, *made[6:]], head, now=NOW)
        assert not result.ok and result.broken
        assert (result.broken["seq"], result.broken["problem"]) == (5, "entry missing")

    def test_a_gap_after_an_entry_that_expired_itself_is_excused(self) -> None:
        made, tail = self.expiring_chain(6, 2)
        head = tail.head(SIGNER, CHAIN)
        assert verify_chain(VERIFIER, CHAIN, [made[1], made[4], *made[6:]], head, now=NOW).ok  # a TTL pass


class TestLegacyChains:
    def legacy_chain(self, key: ChainKey, versions: list[int | None]) -> tuple[list[dict[str, Any]], Tail]:
        made, prev = [], Tail()
        for version in versions:
            doc = entry(prev.offset + 1)
            doc["seq"], doc["prev_hash"] = prev.seq + 1, prev.hash
            if version is None:
                del doc["v"]
            else:
                doc["v"] = version
            doc["hash"] = key.link(prev.hash, doc)
            made.append(doc)
            prev = Tail(doc["seq"], doc["hash"], doc["offset"])
        return made, prev

    def test_v2_entries_deleted_with_their_neighbours_given_a_past_expiry_are_found(self) -> None:
        # v2 entries do not hash the expiry fields, so those fields cannot excuse a gap before one.
        key = ChainKey(secrets.token_bytes(32))
        entries, old = self.legacy_chain(key, [2, 2, 2, 2, 2, 2])
        anchored = Tail(old.seq, old.hash, old.offset, anchor_seq=old.seq, anchor_hash=old.hash)
        kept = entries[:2] + entries[4:]
        kept[2] |= {"prev_expires_at": NOW - timedelta(days=1), "prev_expiring_from": 1}
        for verifier in (Verifier(KeyRing.of(SIGNER), legacy=key), VERIFIER):  # with and without the chain key
            result = verify_chain(verifier, CHAIN, kept, anchored.head(SIGNER, CHAIN), now=NOW)
            assert not result.ok and result.broken and result.broken["seq"] == 3

    def test_without_the_chain_key_legacy_contents_are_counted_unchecked_and_the_anchor_still_binds(self) -> None:
        key = ChainKey(secrets.token_bytes(32))
        entries, old = self.legacy_chain(key, [None, 3, 3])
        anchored = Tail(old.seq, old.hash, old.offset, anchor_seq=old.seq, anchor_hash=old.hash)
        after, tail = chain_of(2, tail=anchored)
        result = verify_chain(VERIFIER, CHAIN, entries + after, tail.head(SIGNER, CHAIN), now=NOW)
        assert result.ok and result.legacy_unchecked == 2 and result.public()["legacy_unchecked"] == 2
        entries[2]["hash"] = "f" * 64  # rewritten legacy part: the signed migration point no longer matches
        after[0]["prev_hash"] = "f" * 64
        result = verify_chain(VERIFIER, CHAIN, entries + after, tail.head(SIGNER, CHAIN), now=NOW)
        assert not result.ok and result.broken and result.broken["seq"] == 3

    def test_a_legacy_head_naming_the_last_entry_without_its_mac_does_not_verify(self) -> None:
        # Anyone can rewrite a chain as unversioned entries (plain SHA-256, no key needed) and add a
        # head without a MAC naming its last entry: such a head must not be migrated, i.e. signed.
        key = ChainKey(secrets.token_bytes(32))
        forged, old = self.legacy_chain(key, [None, None, None])
        head = {"seq": old.seq, "hash": old.hash, "offset": old.offset}
        result = verify_chain(Verifier(KeyRing([]), legacy=key), CHAIN, forged, head, now=NOW, legacy_head=key)
        assert not result.ok and result.broken and result.broken["problem"] == BAD_HEAD_SIGNATURE
        head["mac"] = key.seal_tail(CHAIN, old)  # the genuine legacy head
        assert verify_chain(Verifier(KeyRing([]), legacy=key), CHAIN, forged, head, now=NOW, legacy_head=key).ok

    def test_an_unversioned_entry_after_a_keyed_one_does_not_verify(self) -> None:
        key = ChainKey(secrets.token_bytes(32))
        made, old = self.legacy_chain(key, [3, None, 3])
        head = {"seq": old.seq, "hash": old.hash, "offset": old.offset, "mac": key.seal_tail(CHAIN, old)}
        result = verify_chain(Verifier(KeyRing([]), legacy=key), CHAIN, made, head, now=NOW, legacy_head=key)
        assert not result.ok and result.broken and result.broken["seq"] == 2
        assert "version lower" in result.broken["problem"]


class TestRotation:
    def test_heads_signed_by_a_retired_key_verify_while_it_is_listed(self) -> None:
        old, new = SigningKey.generate(), SigningKey.generate()
        entries, tail = chain_of(2, signer=old)
        head = tail.head(old, CHAIN)
        rotated = Verifier(KeyRing.of(new, retired=old.public.raw.hex()))
        assert verify_chain(rotated, CHAIN, entries, head, now=NOW).ok
        more, tail = chain_of(2, signer=new, tail=tail)
        assert verify_chain(rotated, CHAIN, entries + more, tail.head(new, CHAIN), now=NOW).ok
        assert [k["status"] for k in rotated.keys.public()] == ["current", "retired"]
        unlisted = Verifier(KeyRing.of(new))
        assert not verify_chain(unlisted, CHAIN, entries, head, now=NOW).ok

    def test_keys_are_read_as_hex_or_pem(self) -> None:
        from cryptography.hazmat.primitives import serialization

        key = SigningKey.generate()
        assert SigningKey.parse(key.seed_hex()).public.kid == key.public.kid
        pem = key.public.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert PublicKey.parse(pem.decode()).kid == key.public.kid
        with pytest.raises(ConfigurationError):
            SigningKey.parse("not a key")
