"""``registry_client.signing``: a real model-signing signature over a small model, and files checked against it.

Each test makes its own EC P-256 key and a three-file model (one in a subdirectory) under
``tmp_path``; the provenance the files are checked against is built as registration records it:
the manifest the signature states, marked verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import model_signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from registry_client import BadSignature, Conflict, Invalid, Unsigned
from registry_client.signing import (
    INSTALL_SIGNING,
    ProvenanceUnverified,
    SigningUnavailable,
    local_digests,
    sign_model,
    signed_manifest,
    verify_model_files,
)
from registry_contract.signing_keys import SigningKeyList, SigningKeyPublic
from registry_contract.views import ModelVersionPublic
from tests.client_fakes import REGISTER, Recorder, problem, sync_client, version_json

pytestmark = pytest.mark.unit

FILES = {
    "config.json": b'{"trees": 400}',
    "weights.bin": bytes(range(256)) * 8,
    "tokenizer/vocab.txt": b"card\nfraud\n",
}


def write_key(folder: Path, *, password: bytes | None = None, curve: ec.EllipticCurve | None = None) -> Path:
    """A new EC private key (P-256 unless ``curve``) as PEM; its public half beside it (``.pub.pem``)."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    path = folder / "signing-key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (folder / "signing-key.pub.pem").write_bytes(public)
    return path


def write_model(folder: Path) -> Path:
    """A small model directory: a config, weights and a tokenizer file in a subdirectory."""
    model = folder / "card-fraud-xgb"
    for name, content in FILES.items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(content)
    return model


def recorded(signature: dict[str, Any], *, verified: bool = True) -> dict[str, Any]:
    """The provenance registration records for ``signature``: the statement's manifest, from the payload itself."""
    payload = base64.b64decode(signature["dsseEnvelope"]["payload"])
    predicate = json.loads(payload)["predicate"]
    return {
        "verified": verified,
        "signer": {"key_id": "sk_1", "name": "ci", "fingerprint": "sha256:" + "ab" * 32},
        "algorithm": "ecdsa-sha256-nistp256",
        "manifest": {"serialization": predicate["serialization"], "files": predicate["resources"]},
        "manifest_digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
        "verified_at": "2026-12-06T23:00:00Z",
    }


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return write_key(tmp_path)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_model(tmp_path)


@pytest.fixture
def signed(model: Path, key: Path) -> dict[str, Any]:
    return recorded(sign_model(model, key))


def flip_one_byte(path: Path, at: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


class TestSigning:
    def test_the_signature_is_model_signings_and_its_public_key_verifies_it(
        self, model: Path, key: Path, tmp_path: Path
    ) -> None:
        signature = sign_model(model, key)
        (tmp_path / "model.sig").write_text(json.dumps(signature))
        verifier = model_signing.verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]
            public_key=tmp_path / "signing-key.pub.pem"
        )
        verifier.verify(model, tmp_path / "model.sig")  # raises on a bad signature
        assert signature["mediaType"].startswith("application/vnd.dev.sigstore.bundle")
        assert signature["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"

    def test_the_manifest_lists_every_file_with_its_sha256(self, model: Path, key: Path) -> None:
        manifest = signed_manifest(sign_model(model, key))
        assert {f["name"]: f["digest"] for f in manifest["files"]} == {
            name: hashlib.sha256(content).hexdigest() for name, content in FILES.items()
        }
        assert manifest["serialization"]["method"] == "files"
        assert manifest["serialization"]["hash_type"] == "sha256"

    def test_ignored_paths_stay_out_of_the_manifest(self, model: Path, key: Path) -> None:
        manifest = signed_manifest(sign_model(model, key, ignore_paths=["tokenizer"]))
        assert {f["name"] for f in manifest["files"]} == {"config.json", "weights.bin"}
        assert "tokenizer" in manifest["serialization"]["ignore_paths"]

    def test_an_encrypted_key_signs_with_its_password(self, model: Path, tmp_path: Path) -> None:
        key = write_key(tmp_path, password=b"s3cret")
        assert len(signed_manifest(sign_model(model, key, password="s3cret"))["files"]) == 3
        with pytest.raises(TypeError):
            sign_model(model, key)

    def test_a_key_that_is_not_elliptic_curve_is_refused(self, model: Path, tmp_path: Path) -> None:
        key = tmp_path / "ed25519.pem"
        key.write_bytes(
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        with pytest.raises(ValueError, match="not an elliptic-curve private key"):
            sign_model(model, key)

    def test_what_is_not_a_signature_has_no_manifest(self) -> None:
        with pytest.raises(ValueError, match="not a model-signing signature"):
            signed_manifest({"dsseEnvelope": {"payload": "not base64!"}})


class TestVerifyingFiles:
    def test_untouched_files_match(self, model: Path, signed: dict[str, Any]) -> None:
        result = verify_model_files(signed, model)
        assert result.ok and result.mismatches == () and result.checked == 3
        assert result.manifest_digest == signed["manifest_digest"] and result.signer == signed["signer"]

    def test_one_flipped_byte_is_a_changed_file(self, model: Path, signed: dict[str, Any]) -> None:
        flip_one_byte(model / "weights.bin", at=1000)
        result = verify_model_files(signed, model)
        assert not result.ok
        [mismatch] = result.mismatches
        assert (mismatch.name, mismatch.kind) == ("weights.bin", "changed")
        assert mismatch.expected == "sha256:" + hashlib.sha256(FILES["weights.bin"]).hexdigest()
        assert mismatch.actual == "sha256:" + hashlib.sha256((model / "weights.bin").read_bytes()).hexdigest()

    def test_a_deleted_file_is_missing(self, model: Path, signed: dict[str, Any]) -> None:
        (model / "tokenizer" / "vocab.txt").unlink()
        result = verify_model_files(signed, model)
        assert [(m.name, m.kind, m.actual) for m in result.mismatches] == [("tokenizer/vocab.txt", "missing", None)]

    def test_an_added_file_is_unexpected(self, model: Path, signed: dict[str, Any]) -> None:
        (model / "tokenizer" / "merges.txt").write_text("c a\n")
        result = verify_model_files(signed, model)
        assert [(m.name, m.kind, m.expected) for m in result.mismatches] == [
            ("tokenizer/merges.txt", "unexpected", None)
        ]

    def test_every_kind_is_reported_at_once_in_name_order(self, model: Path, signed: dict[str, Any]) -> None:
        flip_one_byte(model / "config.json")
        (model / "weights.bin").unlink()
        (model / "extra.py").write_text("import os\n")
        result = verify_model_files(signed, model)
        assert [(m.name, m.kind) for m in result.mismatches] == [
            ("config.json", "changed"),
            ("extra.py", "unexpected"),
            ("weights.bin", "missing"),
        ]
        assert result.names("changed") == ["config.json"]

    def test_the_paths_the_signer_ignored_are_ignored_again(self, model: Path, key: Path) -> None:
        signed = recorded(sign_model(model, key, ignore_paths=["tokenizer"]))
        (model / "tokenizer" / "vocab.txt").write_text("changed\n")
        (model / ".git").mkdir()
        (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
        assert verify_model_files(signed, model).ok

    def test_a_sharded_manifest_is_rehashed_by_shards(self, model: Path) -> None:
        config = model_signing.hashing.Config().use_shard_serialization(shard_size=1000)  # type: ignore[no-untyped-call]
        hashed = config.hash(model)
        files = [
            {"name": d.identifier, "algorithm": d.digest.algorithm, "digest": d.digest.digest_hex}
            for d in hashed.resource_descriptors()
        ]
        provenance = {"verified": True, "manifest": {"serialization": hashed.serialization_type, "files": files}}
        assert verify_model_files(provenance, model).ok
        flip_one_byte(model / "weights.bin", at=1500)  # the second shard of 2048 bytes
        [mismatch] = verify_model_files(provenance, model).mismatches
        assert (mismatch.name, mismatch.kind) == ("weights.bin:1000:2000", "changed")

    def test_a_blake2_manifest_is_rehashed_with_blake2(self, model: Path) -> None:
        serialization = {"method": "files", "hash_type": "blake2b", "allow_symlinks": False}
        digests = local_digests(serialization, model)
        assert digests["config.json"] == "blake2b:" + hashlib.blake2b(FILES["config.json"]).hexdigest()

    def test_an_unknown_hashing_is_an_error(self, model: Path, signed: dict[str, Any]) -> None:
        signed["manifest"]["serialization"]["hash_type"] = "md5"
        with pytest.raises(ValueError, match="md5"):
            verify_model_files(signed, model)


class TestWhatItChecksAgainst:
    def test_a_version_read_from_the_registry_is_checked_by_its_provenance(
        self, model: Path, signed: dict[str, Any]
    ) -> None:
        version = ModelVersionPublic.model_validate(version_json(provenance=signed))
        assert verify_model_files(version, model).ok
        assert verify_model_files(version_json(provenance=signed), model).ok  # its JSON too

    def test_a_version_without_provenance_is_refused_as_absent(self, model: Path) -> None:
        for version in (ModelVersionPublic.model_validate(version_json()), version_json(provenance=None)):
            with pytest.raises(ProvenanceUnverified) as raised:
                verify_model_files(version, model)
            assert raised.value.reason == "absent"

    def test_an_unverified_provenance_is_refused(self, model: Path, key: Path) -> None:
        with pytest.raises(ProvenanceUnverified) as raised:
            verify_model_files(recorded(sign_model(model, key), verified=False), model)
        assert raised.value.reason == "unverified"


class TestWithoutTheExtra:
    def test_signing_and_verifying_say_which_extra_to_install(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path, signed: dict[str, Any]
    ) -> None:
        monkeypatch.setitem(sys.modules, "model_signing", None)  # `import model_signing` now fails
        with pytest.raises(SigningUnavailable, match=r"registry-client\[signing\]") as raised:
            sign_model(model, key)
        assert INSTALL_SIGNING in str(raised.value) and isinstance(raised.value, ImportError)
        with pytest.raises(SigningUnavailable, match=r"registry-client\[signing\]"):
            verify_model_files(signed, model)


def signing_key_json(key_id: str = "sk_1", **fields: Any) -> dict[str, Any]:
    return {
        "key_id": key_id,
        "team": "fraud",
        "name": "ci",
        "algorithm": "ecdsa-sha256-nistp256",
        "fingerprint": "sha256:" + "ab" * 32,
        "public_key": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n",
        "created_at": "2026-12-06T23:00:00Z",
        **fields,
    }


class TestTheClientsCalls:
    def test_adding_a_signing_key_posts_its_name_and_pem(self) -> None:
        recorder = Recorder(httpx.Response(201, json=signing_key_json(description="pipeline")))
        with sync_client(recorder) as client:
            key = client.add_signing_key("fraud", "ci", "-----BEGIN PUBLIC KEY-----\n", description="pipeline")
        [request] = recorder.requests
        assert (request.method, request.url.path) == ("POST", "/v1/teams/fraud/signing-keys")
        assert json.loads(request.content) == {
            "name": "ci",
            "public_key": "-----BEGIN PUBLIC KEY-----\n",
            "description": "pipeline",
        }
        assert isinstance(key, SigningKeyPublic) and key.key_id == "sk_1"

    def test_listing_and_removing_signing_keys(self) -> None:
        recorder = Recorder(httpx.Response(200, json={"items": [signing_key_json()]}), httpx.Response(204))
        with sync_client(recorder) as client:
            keys = client.list_signing_keys("fraud")
            client.remove_signing_key("fraud", "sk_1")
        assert isinstance(keys, SigningKeyList) and [k.key_id for k in keys.items] == ["sk_1"]
        assert [(r.method, r.url.path) for r in recorder.requests] == [
            ("GET", "/v1/teams/fraud/signing-keys"),
            ("DELETE", "/v1/teams/fraud/signing-keys/sk_1"),
        ]

    def test_a_version_registers_with_its_signature_as_provenance(self, model: Path, key: Path) -> None:
        signature = sign_model(model, key)
        recorder = Recorder(httpx.Response(201, json=version_json()))
        with sync_client(recorder) as client:
            client.register_version("fraud", "card", "1.0.0", **REGISTER, provenance={"signature": signature})
        assert json.loads(recorder.requests[0].content)["provenance"] == {"signature": signature}

    def test_a_bad_signature_and_an_unsigned_deployment_have_their_errors(self) -> None:
        refused = Recorder(problem(422, "bad_signature"))
        with sync_client(refused, retry=None) as client, pytest.raises(BadSignature) as raised:
            client.register_version("fraud", "card", "1.0.0", **REGISTER, provenance={"signature": {}})
        assert raised.value.reason == "bad_signature"
        assert issubclass(BadSignature, Invalid) and issubclass(Unsigned, Conflict)
