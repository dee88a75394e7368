"""Signed provenance from the client's side, against the stack: trust a key, sign, register, verify, tamper.

The key is made here, the model is a small directory under ``tmp_path``; ``registry`` runs as the
real CLI (``signing-keys``, ``sign``, ``verify``, ``produce register --signature``) and the Python
client registers with the signature over HTTP.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry_cli.stack import EmbeddedStack
from registry_client import AsyncRegistryClient, BadSignature
from tests.e2e.test_cli_browse import cli
from tests.http_tools import Team

pytestmark = pytest.mark.e2e
FILES = {"config.json": b'{"trees": 400}', "model.ubj": bytes(range(256)) * 16, "tokenizer/vocab.txt": b"card\n"}


def write_key(folder: Path, name: str) -> tuple[Path, Path, str]:
    """A new P-256 key pair as PEM files, and the public key's fingerprint as the registry states it."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = folder / f"{name}.pub.pem"
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, spki))
    der = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    return private, public, "sha256:" + hashlib.sha256(der).hexdigest()


def write_model(folder: Path) -> Path:
    model = folder / "card-fraud-xgb"
    for name, content in FILES.items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(content)
    return model


def client_of(stack: EmbeddedStack, token: str) -> AsyncRegistryClient:
    return AsyncRegistryClient(token, registration_url=stack.url("registration"), query_url=stack.url("query"))


async def test_a_signed_version_verifies_until_one_byte_flips(stack: EmbeddedStack, team: Team, tmp_path: Path) -> None:
    private, public, fingerprint = write_key(tmp_path, "release")
    added = await cli(
        stack, team.writer, "signing-keys", "add", team.name, "--name", "release", "--public-key", str(public), "--json"
    )
    key = added.json()
    assert key["fingerprint"] == fingerprint and key["algorithm"] == "ecdsa-sha256-nistp256"
    model = write_model(tmp_path)
    signed = await cli(stack, team.writer, "sign", str(model), "--key", str(private), "-o", str(tmp_path / "model.sig"))
    assert signed.code == 0, signed.err
    signature = json.loads((tmp_path / "model.sig").read_text())

    async with client_of(stack, team.writer) as client:
        version = await client.register_version(
            team.name,
            "card-fraud-xgb",
            "1.0.0",
            framework="xgboost",
            artifact_uri="s3://models/card-fraud-xgb/1.0.0/model.tar.gz",
            provenance={"signature": signature},
            wait=True,
        )
    assert version.provenance is not None and version.provenance.verified
    assert (version.provenance.signer.key_id, version.provenance.signer.fingerprint) == (key["key_id"], fingerprint)
    assert {f.name for f in version.provenance.manifest.files} == set(FILES)

    verified = await cli(stack, team.writer, "verify", team.name, "card-fraud-xgb", "1.0.0", str(model))
    assert verified.code == 0, verified.out + verified.err
    assert "all 3 files match" in verified.out and fingerprint in verified.out

    weights = bytearray((model / "model.ubj").read_bytes())
    weights[2048] ^= 0x01  # one bit of one byte
    (model / "model.ubj").write_bytes(bytes(weights))
    tampered = await cli(stack, team.writer, "verify", team.name, "card-fraud-xgb", "1.0.0", str(model), "--json")
    assert tampered.code == 5, tampered.out + tampered.err
    assert [(m["name"], m["problem"]) for m in json.loads(tampered.out)["mismatches"]] == [("model.ubj", "changed")]


async def test_a_version_registered_over_kafka_with_the_signature_flag_verifies(
    stack: EmbeddedStack, team: Team, tmp_path: Path
) -> None:
    private, public, _ = write_key(tmp_path, "pipeline")
    added = await cli(
        stack, team.writer, "signing-keys", "add", team.name, "--name", "pipeline", "--public-key", str(public)
    )
    assert added.code == 0, added.err
    model = write_model(tmp_path)
    assert (
        await cli(stack, team.writer, "sign", str(model), "--key", str(private), "-o", str(tmp_path / "m.sig"))
    ).code == 0
    data = {
        "team": team.name,
        "name": "card-fraud-xgb",
        "version": "2.0.0",
        "framework": "xgboost",
        "artifact_uri": "s3://models/card-fraud-xgb/2.0.0/model.tar.gz",
    }
    produced = await cli(
        stack,
        team.writer,
        "produce",
        "register",
        "--data",
        json.dumps(data),
        "--signature",
        str(tmp_path / "m.sig"),
        "--bootstrap-servers",
        stack.settings.kafka_bootstrap,
        "--wait",
        "30",
    )
    assert produced.code == 0, produced.out + produced.err
    token = json.loads(produced.out)["consistency_token"]
    verified = await cli(
        stack, team.writer, "verify", team.name, "card-fraud-xgb", "2.0.0", str(model), "--consistency", token
    )
    assert verified.code == 0, verified.out + verified.err


async def test_without_verified_provenance_verify_exits_6_and_an_untrusted_key_is_refused(
    stack: EmbeddedStack, team: Team, tmp_path: Path
) -> None:
    model = write_model(tmp_path)
    async with client_of(stack, team.writer) as client:
        await client.register_version(
            team.name,
            "card-plain",
            "1.0.0",
            framework="xgboost",
            artifact_uri="s3://models/card-plain/1.0.0",
            wait=True,
        )
        unverified = await cli(stack, team.writer, "verify", team.name, "card-plain", "1.0.0", str(model))
        assert unverified.code == 6 and "registered without a signature" in unverified.err

        private, _, _ = write_key(tmp_path, "stranger")  # never added to the team's signing keys
        assert (
            await cli(stack, team.writer, "sign", str(model), "--key", str(private), "-o", str(tmp_path / "s.sig"))
        ).code == 0
        signature = json.loads((tmp_path / "s.sig").read_text())
        with pytest.raises(BadSignature):
            await client.register_version(
                team.name,
                "card-plain",
                "1.1.0",
                framework="xgboost",
                artifact_uri="s3://models/card-plain/1.1.0",
                provenance={"signature": signature},
            )


async def test_signing_keys_list_and_remove(stack: EmbeddedStack, team: Team, tmp_path: Path) -> None:
    _, public, fingerprint = write_key(tmp_path, "old")
    key = (
        await cli(
            stack, team.writer, "signing-keys", "add", team.name, "--name", "old", "--public-key", str(public), "--json"
        )
    ).json()
    listed = await cli(stack, team.writer, "signing-keys", "list", team.name, "--json")
    assert [(k["key_id"], k["fingerprint"]) for k in listed.json()] == [(key["key_id"], fingerprint)]
    removed = await cli(stack, team.writer, "signing-keys", "remove", team.name, key["key_id"])
    assert removed.code == 0, removed.err
    assert (await cli(stack, team.writer, "signing-keys", "list", team.name, "--json")).json() == []
    again = await cli(stack, team.writer, "signing-keys", "remove", team.name, key["key_id"])
    assert again.code == 3
