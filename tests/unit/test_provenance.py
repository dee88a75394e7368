"""Signed provenance at registration: model-signing signatures verified offline against a team's keys."""

import base64
import hashlib
import json
import pathlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import model_signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from model_signing._signing import sign_sigstore_pb
from pydantic import ValidationError

from query.api.card_markdown import card_markdown
from query.api.cards import build_card
from registration import signature_check
from registration.commands import Rejected
from registration.handlers import Command, checked_first, handle_commands
from registration.provenance import SignatureRefused, TrustedKey, read_public_key, verify
from registration.repository import InMemoryRepository
from registration.signatures import verify_all
from registry_contract import catalog, messages
from registry_contract.auth import Principal
from registry_contract.documents import Document
from registry_contract.signing_keys import SigningKeyCreate
from registry_contract.versioning import precedence_key
from registry_contract.views import ModelVersionPublic
from tests.factories import register_data, register_event
from tests.imports import modules_loaded_by

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 1, 2, 14, tzinfo=UTC)
PublicKeyTypes = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def pem(key: PublicKeyTypes) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_key_file(
    directory: pathlib.Path, curve: ec.EllipticCurve
) -> tuple[pathlib.Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(curve)
    path = directory / f"signer-{curve.name}.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path, key


def model_dir(directory: pathlib.Path) -> pathlib.Path:
    model = directory / "model"
    (model / "weights").mkdir(parents=True)
    (model / "config.json").write_text('{"layers": 2}')
    (model / "weights" / "part-0.bin").write_bytes(bytes(range(256)))
    return model


def sign(model: pathlib.Path, private_key: pathlib.Path) -> dict[str, Any]:
    """The signature file model-signing writes for ``model``, as JSON (what a producer sends)."""
    out = model.parent / "model.sig"
    config = model_signing.signing.Config()  # type: ignore[no-untyped-call]
    config.use_elliptic_key_signer(private_key=private_key).sign(model, out)
    signature: dict[str, Any] = json.loads(out.read_text())
    return signature


def trusted(key: ec.EllipticCurvePrivateKey, key_id: str = "sk_0001", name: str = "ci") -> TrustedKey:
    info = read_public_key(pem(key.public_key()))
    return TrustedKey.of({"_id": key_id, "name": name, "public_key": info.pem})


@pytest.fixture
def signed(tmp_path: pathlib.Path) -> tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]:
    path, key = private_key_file(tmp_path, ec.SECP256R1())
    model = model_dir(tmp_path)
    return model, key, sign(model, path)


class TestTeamKeys:
    def test_a_p256_key_is_read_with_its_algorithm_and_the_sha256_of_its_der_as_fingerprint(self) -> None:
        public = ec.generate_private_key(ec.SECP256R1()).public_key()
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        info = read_public_key(pem(public))
        assert info.algorithm == "ecdsa-sha256-nistp256"
        assert info.fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()

    def test_a_p384_key_verifies_sha384_signatures(self) -> None:
        info = read_public_key(pem(ec.generate_private_key(ec.SECP384R1()).public_key()))
        assert info.algorithm == "ecdsa-sha384-nistp384"

    @pytest.mark.parametrize(
        ("key", "said"),
        [
            (rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), "of type RSA"),
            (ed25519.Ed25519PrivateKey.generate().public_key(), "of type Ed25519"),
            (ec.generate_private_key(ec.SECP521R1()).public_key(), "on curve secp521r1"),
        ],
    )
    def test_keys_other_than_p256_and_p384_are_refused_saying_what_they_are(
        self, key: PublicKeyTypes, said: str
    ) -> None:
        with pytest.raises(ValueError, match=said):
            read_public_key(pem(key))

    def test_text_that_is_no_pem_key_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a PEM public key"):
            read_public_key("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n")


class TestVerification:
    def test_a_signature_of_a_trusted_key_records_the_signer_and_every_file_digest(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]
    ) -> None:
        model, key, signature = signed
        recorded = verify(signature, [trusted(key)], now=NOW)
        public = ModelVersionPublic.model_validate(
            {**register_data("fraud", "card"), "model_id": "m", "created_at": NOW, "updated_at": NOW}
            | {"provenance": recorded}
        ).provenance
        assert public is not None and public.verified and public.verified_at == NOW
        assert (public.signer.key_id, public.signer.name) == ("sk_0001", "ci")
        assert public.signer.fingerprint == read_public_key(pem(key.public_key())).fingerprint
        assert public.algorithm == "ecdsa-sha256-nistp256"
        files = {f.name: (f.algorithm, f.digest) for f in public.manifest.files}
        assert files == {
            name: ("sha256", hashlib.sha256((model / name).read_bytes()).hexdigest())
            for name in ("config.json", "weights/part-0.bin")
        }
        assert public.manifest.serialization["method"] == "files"
        payload = base64.b64decode(signature["dsseEnvelope"]["payload"])
        assert public.manifest_digest == "sha256:" + hashlib.sha256(payload).hexdigest()
        assert public.subject == "model"  # the signed statement's subject: the directory's name

    def test_a_p384_signature_verifies_with_its_key(self, tmp_path: pathlib.Path) -> None:
        path, key = private_key_file(tmp_path, ec.SECP384R1())
        recorded = verify(sign(model_dir(tmp_path), path), [trusted(key)], now=NOW)
        assert recorded["algorithm"] == "ecdsa-sha384-nistp384"

    def test_the_key_the_bundle_names_is_found_among_several(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]
    ) -> None:
        _, key, signature = signed
        others = [trusted(ec.generate_private_key(ec.SECP256R1()), f"sk_{n}") for n in range(3)]
        assert verify(signature, [*others, trusted(key, "sk_right")], now=NOW)["signer"]["key_id"] == "sk_right"

    def test_a_signature_of_another_key_is_refused(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]
    ) -> None:
        _, _, signature = signed
        with pytest.raises(SignatureRefused, match="not one of the team's 1 signing keys"):
            verify(signature, [trusted(ec.generate_private_key(ec.SECP256R1()))], now=NOW)

    @pytest.mark.parametrize(
        "material",
        [
            {"certificate": {"rawBytes": base64.b64encode(b"not a certificate").decode()}},
            {"x509CertificateChain": {"certificates": [{"rawBytes": base64.b64encode(b"x").decode()}]}},
            {"publicKey": {}},
            {"publicKey": {"hint": ""}},
        ],
        ids=["certificate", "certificate-chain", "no-hint", "empty-hint"],
    )
    def test_a_bundle_naming_no_public_key_is_refused_without_trying_any_key(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]], material: Document
    ) -> None:
        _, key, signature = signed
        signature["verificationMaterial"] = material
        with pytest.raises(SignatureRefused, match="names no public key"):
            verify(signature, [trusted(key)], now=NOW)

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda s: {**s, "verificationMaterial": []},
            lambda s: {**s, "verificationMaterial": {"publicKey": {"hint": 7}}},
            lambda s: {**s, "verificationMaterial": {"publicKey": []}},
            lambda s: {**s, "verificationMaterial": None},
            lambda s: {**s, "dsseEnvelope": {**s["dsseEnvelope"], "signatures": [{"sig": 5}]}},
            lambda s: {**s, "dsseEnvelope": {**s["dsseEnvelope"], "signatures": ["sig"]}},
            lambda s: {**s, "dsseEnvelope": {**s["dsseEnvelope"], "payload": None}},
            lambda s: {**s, "dsseEnvelope": {**s["dsseEnvelope"], "payloadType": []}},
            lambda s: {**s, "dsseEnvelope": {**s["dsseEnvelope"], "signatures": [{"sig": "!!not base64"}]}},
            lambda s: {**s, "dsseEnvelope": {**s["dsseEnvelope"], "signatures": [{"sig": ""}]}},
            lambda s: {**s, "mediaType": None},
            lambda s: [],
        ],
    )
    def test_a_bundle_with_wrong_types_anywhere_is_refused_never_raising_anything_else(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]], mangle: Any
    ) -> None:
        _, key, signature = signed
        with pytest.raises(SignatureRefused):
            verify(mangle(signature), [trusted(key)], now=NOW)

    def test_whatever_a_keys_check_raises_is_a_refusal(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, key, signature = signed

        def broken(*args: Any) -> None:
            raise AttributeError("'NoneType' object has no attribute 'hint'")  # what a certificate bundle did

        monkeypatch.setattr(signature_check._Verifier, "_verify_bundle", broken)
        with pytest.raises(SignatureRefused, match="does not verify with the key it names"):
            verify(signature, [trusted(key)], now=NOW)

    def test_a_bad_signature_costs_one_check_never_the_libraries_0x_fallback(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, key, signature = signed
        fallbacks: list[bytes] = []
        monkeypatch.setattr(sign_sigstore_pb, "pae_compat", fallbacks.append)
        sig = bytearray(base64.b64decode(signature["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[-1] ^= 0x01
        signature["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
        with pytest.raises(SignatureRefused, match="does not verify"):
            verify(signature, [trusted(key)], now=NOW)
        assert fallbacks == []

    def test_a_verifying_signature_prints_nothing(
        self,
        signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        _, key, signature = signed
        verify(signature, [trusted(key)], now=NOW)
        assert capsys.readouterr().out == ""

    def test_a_tampered_statement_is_refused(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]
    ) -> None:
        _, key, signature = signed
        statement = json.loads(base64.b64decode(signature["dsseEnvelope"]["payload"]))
        statement["predicate"]["resources"][0]["digest"] = "0" * 64  # another file, under the same signature
        signature["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        with pytest.raises(SignatureRefused, match="does not verify with the key it names"):
            verify(signature, [trusted(key)], now=NOW)

    def test_a_flipped_signature_byte_is_refused(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]
    ) -> None:
        _, key, signature = signed
        sig = bytearray(base64.b64decode(signature["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[-1] ^= 0x01
        signature["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
        with pytest.raises(SignatureRefused, match="does not verify"):
            verify(signature, [trusted(key)], now=NOW)

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda s: {"hello": "world"},
            lambda s: {**s, "dsseEnvelope": {"payload": 1}},
            lambda s: {**s, "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1"},
            lambda s: {**s, "dsseEnvelope": {**s["dsseEnvelope"], "signatures": []}},
        ],
        ids=["not-a-bundle", "bad-envelope", "other-media-type", "no-signature"],
    )
    def test_a_malformed_bundle_is_refused_as_malformed(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]], mangle: Any
    ) -> None:
        _, key, signature = signed
        with pytest.raises(SignatureRefused, match="malformed signature bundle"):
            verify(mangle(signature), [trusted(key)], now=NOW)

    def test_a_team_without_keys_is_told_to_add_one(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]
    ) -> None:
        with pytest.raises(SignatureRefused, match="trusts no signing key"):
            verify(signed[2], [], now=NOW)

    def test_each_registration_is_verified_with_its_own_teams_keys(
        self, signed: tuple[pathlib.Path, ec.EllipticCurvePrivateKey, dict[str, Any]]
    ) -> None:
        _, key, signature = signed
        provenance = {"signature": signature}
        mine = messages.RegisterModelVersion.model_validate(register_data("fraud", "card", provenance=provenance))
        theirs = messages.RegisterModelVersion.model_validate(register_data("ads", "ctr", provenance=provenance))
        found = verify_all([("a", mine), ("b", theirs)], {"fraud": [trusted(key)], "ads": []}, now=NOW)
        assert isinstance(found["a"], dict) and found["a"]["verified"] is True
        assert isinstance(found["b"], Rejected) and found["b"].reason == "bad_signature"
        assert found["b"].message.startswith("ads/ctr 1.0.0: the team trusts no signing key")


class TestBounds:
    def test_a_signature_larger_than_the_limit_is_invalid_before_anything_parses_it(self) -> None:
        huge = {"dsseEnvelope": {"payload": "A" * (catalog.MAX_PROVENANCE_BYTES + 1)}}
        with pytest.raises(ValidationError, match="longer than"):
            messages.RegisterModelVersion.model_validate(register_data("fraud", "card", provenance={"signature": huge}))

    def test_many_values_under_the_string_limit_are_refused_by_total_size(self) -> None:
        wide = {f"k{n}": "A" * 10_000 for n in range(20)}
        with pytest.raises(ValidationError, match="bytes as JSON"):
            messages.RegisterModelVersion.model_validate(register_data("fraud", "card", provenance={"signature": wide}))

    def test_a_deeply_nested_signature_is_refused(self) -> None:
        deep: dict[str, Any] = {}
        for _ in range(catalog.MAX_PROVENANCE_DEPTH + 2):
            deep = {"a": deep}
        with pytest.raises(ValidationError, match="nested deeper"):
            messages.RegisterModelVersion.model_validate(register_data("fraud", "card", provenance={"signature": deep}))


PRODUCER = Principal(key_id="prod0001", team="fraud", scopes=frozenset({"models:write"}))


class FakeCheck:
    """A signature check answering from a table, recording what it was asked."""

    def __init__(self, answers: dict[str, Document | Rejected]) -> None:
        self.answers, self.asked = answers, list[str]()

    async def __call__(self, registrations: Sequence[tuple[str, messages.RegisterModelVersion]]) -> dict[str, Any]:
        self.asked.extend(key for key, _ in registrations)
        return {key: self.answers[data.version] for key, data in registrations}


RECORDED: Document = {
    "verified": True,
    "signer": {"key_id": "sk_1", "name": "ci", "fingerprint": "sha256:" + "a" * 64},
    "algorithm": "ecdsa-sha256-nistp256",
    "manifest": {"serialization": {"method": "files"}, "files": []},
    "manifest_digest": "sha256:" + "b" * 64,
    "verified_at": NOW,
}
SIGNED = {"signature": {"mediaType": "x"}}  # a provenance (the check is faked)


class TestRegistering:
    async def test_a_verified_signature_is_recorded_on_the_version_and_in_its_event(self) -> None:
        repo, check = InMemoryRepository(), FakeCheck({"1.0.0": RECORDED})
        command = Command(register_event("fraud", "card", provenance=SIGNED), PRODUCER)
        [outcome] = await handle_commands([command], repo=repo, artifact_schemes=["s3"], check_signatures=check)
        assert outcome.event.type == messages.MODEL_VERSION_REGISTERED
        assert outcome.event.data["provenance"]["signer"]["key_id"] == "sk_1"
        [stored] = repo.versions.values()
        assert stored["provenance"] == RECORDED and "signature" not in str(stored["provenance"])

    async def test_a_version_without_signature_records_no_provenance_and_asks_nothing(self) -> None:
        repo, check = InMemoryRepository(), FakeCheck({})
        [outcome] = await handle_commands(
            [Command(register_event("fraud", "card"), PRODUCER)],
            repo=repo,
            artifact_schemes=["s3"],
            check_signatures=check,
        )
        assert outcome.event.data["provenance"] is None and check.asked == []

    async def test_a_refused_signature_rejects_the_command_bad_signature(self) -> None:
        repo = InMemoryRepository()
        check = FakeCheck({"1.0.0": Rejected("bad_signature", "fraud/card 1.0.0: the signature does not verify")})
        command = Command(register_event("fraud", "card", provenance=SIGNED), PRODUCER)
        [outcome] = await handle_commands([command], repo=repo, artifact_schemes=["s3"], check_signatures=check)
        assert outcome.rejected
        assert (outcome.event.data["reason"], outcome.event.data["message"]) == (
            "bad_signature",
            "fraud/card 1.0.0: the signature does not verify",
        )
        assert repo.versions == {}

    async def test_without_a_check_every_signature_is_refused(self) -> None:
        command = Command(register_event("fraud", "card", provenance=SIGNED), PRODUCER)
        [outcome] = await handle_commands([command], repo=InMemoryRepository(), artifact_schemes=["s3"])
        assert outcome.rejected and outcome.event.data["reason"] == "bad_signature"

    async def test_a_signature_checked_before_queueing_is_not_checked_again_in_the_batch(self) -> None:
        repo, check = InMemoryRepository(), FakeCheck({"1.0.0": RECORDED})
        command = Command(register_event("fraud", "card", provenance=SIGNED), PRODUCER)
        first = await checked_first(command, artifact_schemes=["s3"], check_signatures=check)
        assert first.signature_checked == RECORDED and check.asked == [command.key]
        [outcome] = await handle_commands([first], repo=repo, artifact_schemes=["s3"], check_signatures=check)
        assert outcome.event.data["provenance"]["signer"]["key_id"] == "sk_1" and check.asked == [command.key]

    async def test_a_refusal_found_before_queueing_rejects_only_its_own_command(self) -> None:
        refused = Rejected("bad_signature", "fraud/card 1.0.0: the bundle names no public key")
        check = FakeCheck({"1.0.0": refused, "2.0.0": RECORDED})
        bad = await checked_first(
            Command(register_event("fraud", "card", provenance=SIGNED), PRODUCER),
            artifact_schemes=["s3"],
            check_signatures=check,
        )
        good = Command(register_event("fraud", "card", version="2.0.0", provenance=SIGNED), PRODUCER)
        outcomes = await handle_commands(
            [bad, good], repo=InMemoryRepository(), artifact_schemes=["s3"], check_signatures=check
        )
        assert [o.event.data.get("reason") for o in outcomes] == ["bad_signature", None]

    async def test_another_teams_registration_is_forbidden_without_trying_any_key(self) -> None:
        check = FakeCheck({"1.0.0": RECORDED})
        command = Command(register_event("ads", "ctr", provenance=SIGNED), PRODUCER)
        [outcome] = await handle_commands(
            [command], repo=InMemoryRepository(), artifact_schemes=["s3"], check_signatures=check
        )
        assert outcome.event.data["reason"] == "forbidden" and check.asked == []


class TestModelCard:
    def test_the_card_names_the_key_that_verified_the_described_version_and_says_nothing_otherwise(self) -> None:
        card_model = {"_id": "m-1", "team": "fraud", "name": "card", "latest_version": "1.1.0", "version_count": 2}

        def version(number: str, **fields: Any) -> Document:
            key = precedence_key(number)
            named = {"_id": f"m-1:{key}", "model_id": "m-1", "team": "fraud", "name": "card", "version": number}
            return named | {"version_key": key, "framework": "xgboost", "artifact_uri": "s3://b/k", **fields}

        versions = [version("1.0.0"), version("1.1.0", provenance=RECORDED)]
        signed = build_card(card_model, versions, None, "1.1.0")
        assert signed.details.signed_by == "ci (sha256:" + "a" * 64 + ")"
        assert "| Signed by | ci (sha256:" in card_markdown(signed)
        unsigned = build_card(card_model, versions, None, "1.0.0")
        assert unsigned.details.signed_by is None and "Signed by" not in card_markdown(unsigned)


@pytest.mark.parametrize("field", ["name", "description"])
@pytest.mark.parametrize("character", ["\n", "\r", "\t", "\x00", "\x1b"])
def test_a_signing_keys_name_and_description_hold_no_control_character(field: str, character: str) -> None:
    # Both go into the audit log's one-line detail of the key's events, as a trust rule's do.
    body = {"name": "release", "public_key": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"}
    with pytest.raises(ValidationError, match="control characters"):
        SigningKeyCreate.model_validate(body | {field: f"line one{character}line two"})
    assert SigningKeyCreate.model_validate(body).public_key.count("\n") == 3  # the PEM keeps its newlines


def test_registration_starts_without_model_signing() -> None:
    # A fifth of registration's memory and 0.4 s of its start: loaded with the first signature only.
    signing = [name for name in modules_loaded_by("registration.app") if name.startswith(("model_signing", "sigstore"))]
    assert signing == [], signing
