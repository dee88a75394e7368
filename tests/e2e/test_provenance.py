"""Signed provenance through the running stack: a team's keys, signed registrations, the deploy gate.

The stack requires verified provenance in the environment ``secure`` (tests/conftest.py sets
``DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS``); the signatures are real ones, made by model-signing
with a key each test makes.
"""

import asyncio
import base64
import copy
import hashlib
import json
import pathlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import model_signing
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from registry_cli.stack import EmbeddedStack
from registry_contract import messages
from registry_contract.envelope import CloudEvent
from shared.chassis.problems import PROBLEM_JSON
from tests.e2e.console_tools import console_client, sign_in
from tests.factories import binary_record, register_event, signing_key_pem
from tests.http_tools import acting_as, register, team_key, team_name
from tests.kafka_tools import Collector, caused_by, header, publish_raw

pytestmark = pytest.mark.e2e
SCOPES = ["models:read", "models:write", "deployments:write", "team:admin"]
T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
SIGNED_ONLY = "secure"  # DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS of the test stack


def key_pair(directory: pathlib.Path) -> tuple[pathlib.Path, str]:
    """A new P-256 private key written to ``directory`` (PEM), and its public half (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = directory / f"signer-{uuid.uuid4().hex}.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public.decode()


def model_dir(directory: pathlib.Path) -> pathlib.Path:
    model = directory / "model"
    (model / "weights").mkdir(parents=True, exist_ok=True)
    (model / "config.json").write_text('{"trees": 300}')
    (model / "weights" / "booster.bin").write_bytes(bytes(range(256)) * 4)
    return model


def sign(model: pathlib.Path, private_key: pathlib.Path) -> dict[str, Any]:
    """The signature file model-signing writes for ``model``, as JSON."""
    out = model.parent / "model.sig"
    config = model_signing.signing.Config()  # type: ignore[no-untyped-call]
    config.use_elliptic_key_signer(private_key=private_key).sign(model, out)
    signature: dict[str, Any] = json.loads(out.read_text())
    return signature


async def trust(stack: EmbeddedStack, token: str, team: str, public_key: str, name: str = "release") -> dict[str, Any]:
    async with acting_as(stack, "registration", token) as registration:
        added = await registration.post(f"/v1/teams/{team}/signing-keys", json={"name": name, "public_key": public_key})
    assert added.status_code == 201, added.text
    return dict(added.json())


async def signing_team(
    stack: EmbeddedStack, tmp_path: pathlib.Path
) -> tuple[str, str, pathlib.Path, str, dict[str, Any]]:
    """A new team, its key, and a key pair it trusts: (team, token, private key file, public PEM, signing key)."""
    team = team_name("sig")
    token = await team_key(stack, team, SCOPES)
    private_key, public_key = key_pair(tmp_path)
    return team, token, private_key, public_key, await trust(stack, token, team, public_key)


def report(team: str, environment: str, status: str = "deployed", version: str = "1.0.0") -> dict[str, Any]:
    return {
        "team": team,
        "name": "m",
        "version": version,
        "environment": environment,
        "status": status,
        "occurred_at": T0.isoformat(),
    }


async def report_waiting(stack: EmbeddedStack, token: str, data: dict[str, Any]) -> httpx.Response:
    """A report over the HTTP bridge, waiting for the tracker's outcome (``Prefer: wait``)."""
    async with acting_as(stack, "deploy-tracker", token, timeout=45) as tracker:
        return await tracker.post("/v1/deployments/events", json=data, headers={"Prefer": "wait=30"})


async def test_a_signed_version_is_verified_recorded_read_and_deployed_where_provenance_is_required(
    stack: EmbeddedStack, tmp_path: pathlib.Path
) -> None:
    team, token, private_key, public_key, key = await signing_team(stack, tmp_path)
    der = serialization.load_pem_public_key(public_key.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert (key["algorithm"], key["fingerprint"]) == (
        "ecdsa-sha256-nistp256",
        "sha256:" + hashlib.sha256(der).hexdigest(),
    )
    async with acting_as(stack, "registration", token) as registration:
        listed = (await registration.get(f"/v1/teams/{team}/signing-keys")).json()["items"]
    assert [k["key_id"] for k in listed] == [key["key_id"]]

    model = model_dir(tmp_path)
    signature = sign(model, private_key)
    digest = "sha256:" + "ab" * 32  # the archive artifact_uri names: kept as given
    registered = await register(
        stack, token, team, "m", artifact_digest=digest, provenance={"signature": signature}, expect=201
    )
    provenance = registered.json()["provenance"]
    assert provenance["verified"] is True and registered.json()["artifact_digest"] == digest
    assert provenance["signer"] == {"key_id": key["key_id"], "name": "release", "fingerprint": key["fingerprint"]}
    assert provenance["algorithm"] == "ecdsa-sha256-nistp256"
    files = {f["name"]: f["digest"] for f in provenance["manifest"]["files"]}
    assert files == {
        name: hashlib.sha256((model / name).read_bytes()).hexdigest() for name in ("config.json", "weights/booster.bin")
    }
    assert provenance["manifest"]["serialization"]["method"] == "files"
    assert provenance["subject"] == "model"  # the signed statement's subject: the directory's name

    # The read side shows it as recorded (read at least this write: its consistency token).
    consistency = {"X-Registry-Consistency": registered.headers["X-Registry-Consistency"]}
    async with acting_as(stack, "query", token) as query:
        read = await query.get(f"/v1/models/{team}/m/versions/1.0.0", headers=consistency)
    assert read.status_code == 200, read.text
    assert read.json()["provenance"] == provenance

    # The console's version section says who signed it.
    async with console_client(stack) as console:
        await sign_in(console, token)
        page = await console.get(f"/console/models/{team}/m", params={"version": "1.0.0"})
    assert page.status_code == 200, page.text
    assert re.search(r"verified</span> signed by release <code[^>]*>" + key["fingerprint"], page.text), page.text
    assert "2 files, manifest" in page.text and provenance["manifest_digest"] in page.text

    # It goes to work where verified provenance is required.
    deployed = await report_waiting(stack, token, report(team, SIGNED_ONLY))
    assert deployed.status_code == 200, deployed.text

    # One byte flipped in a downloaded file: its digest is no longer the signed one.
    (model / "config.json").write_text('{"trees": 301}')
    assert hashlib.sha256((model / "config.json").read_bytes()).hexdigest() != files["config.json"]


async def test_an_unsigned_version_is_refused_unsigned_where_provenance_is_required(stack: EmbeddedStack) -> None:
    team = team_name("sig")
    token = await team_key(stack, team, SCOPES)
    registered = await register(stack, token, team, "m", expect=201)
    assert registered.json()["provenance"] is None

    refused = await report_waiting(stack, token, report(team, SIGNED_ONLY))
    assert (refused.status_code, refused.headers["content-type"]) == (409, PROBLEM_JSON), refused.text
    problem = refused.json()
    assert (problem["type"], problem["title"]) == ("urn:registry:problem:unsigned", "Version not signed")
    assert problem["detail"].startswith(f"{team}/m 1.0.0 has no verified provenance, which secure requires")
    assert "DEPLOY_TRACKER_PROVENANCE_ENVIRONMENTS" in problem["detail"]

    # Over Kafka alike; an environment off the list takes the version.
    async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
        sent = CloudEvent(
            source="/ci", type=messages.DEPLOY_STATUS_REPORTED, data=report(team, SIGNED_ONLY), sign_with=token
        )
        await publish_raw(
            stack.settings.kafka_bootstrap, "deploy.events", [(*binary_record(sent), f"{team}/m".encode())]
        )
        rejected = await events.wait_for(
            lambda r: caused_by(sent.id)(r) and header(r, "ce_type") == messages.COMMAND_REJECTED
        )
    assert json.loads(rejected[0].value)["reason"] == "unsigned"
    staged = await report_waiting(stack, token, report(team, "staging"))
    assert staged.status_code == 200, staged.text


async def test_a_signature_no_trusted_key_verifies_is_refused_bad_signature_over_http_and_kafka(
    stack: EmbeddedStack, tmp_path: pathlib.Path
) -> None:
    team = team_name("sig")
    token = await team_key(stack, team, SCOPES)
    model = model_dir(tmp_path)
    (trusted_key, trusted_public), (stranger, _) = key_pair(tmp_path), key_pair(tmp_path)

    # No key trusted yet: the team is told to add one.
    refused = await register(stack, token, team, "m", provenance={"signature": sign(model, trusted_key)}, expect=422)
    assert refused.json()["type"] == "urn:registry:problem:bad_signature"
    assert "the team trusts no signing key" in refused.json()["detail"]

    await trust(stack, token, team, trusted_public)
    untrusted = sign(model, stranger)
    refused = await register(stack, token, team, "m", provenance={"signature": untrusted}, expect=422)
    assert (refused.json()["type"], refused.json()["title"]) == ("urn:registry:problem:bad_signature", "Bad signature")
    assert "is not one of the team's 1 signing keys" in refused.json()["detail"]

    tampered = sign(model, trusted_key)
    envelope = tampered["dsseEnvelope"]
    envelope["payload"] = (
        envelope["payload"][:-8] + ("A" if envelope["payload"][-8] != "A" else "B") + envelope["payload"][-7:]
    )
    refused = await register(stack, token, team, "m", provenance={"signature": tampered}, expect=422)
    assert refused.json()["type"] == "urn:registry:problem:bad_signature"

    malformed = await register(stack, token, team, "m", provenance={"signature": {"mediaType": "x"}}, expect=422)
    assert "malformed signature bundle" in malformed.json()["detail"]

    async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
        command = register_event(team, "m", "2.0.0", token=token, provenance={"signature": untrusted})
        await publish_raw(
            stack.settings.kafka_bootstrap, "registry.commands", [(*binary_record(command), f"{team}/m".encode())]
        )
        [rejected] = await events.wait_for(caused_by(command.id))
    assert header(rejected, "ce_type") == messages.COMMAND_REJECTED
    refusal = json.loads(rejected.value)
    assert (refusal["reason"], refusal["team"], refusal["name"]) == ("bad_signature", team, "m")
    assert refusal["message"].startswith(f"{team}/m 2.0.0: the signature names a key")

    # A signed version over Kafka is recorded as over HTTP.
    async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
        command = register_event(team, "m", "3.0.0", token=token, provenance={"signature": sign(model, trusted_key)})
        await publish_raw(
            stack.settings.kafka_bootstrap, "registry.commands", [(*binary_record(command), f"{team}/m".encode())]
        )
        [registered] = await events.wait_for(caused_by(command.id))
    assert header(registered, "ce_type") == messages.MODEL_VERSION_REGISTERED, registered.value
    assert json.loads(registered.value)["provenance"]["verified"] is True


async def test_a_certificate_bundle_is_refused_alone_while_a_signed_registration_beside_it_succeeds(
    stack: EmbeddedStack, tmp_path: pathlib.Path
) -> None:
    team, token, private_key, _, _ = await signing_team(stack, tmp_path)
    good = sign(model_dir(tmp_path), private_key)
    hostile = copy.deepcopy(good)  # a certificate where the key's hint was: what keyless or PKI signing writes
    hostile["verificationMaterial"] = {"certificate": {"rawBytes": base64.b64encode(b"not a cert").decode()}}

    # Over HTTP, at the same moment: the hostile one does not fail the transaction the other shares.
    refused, registered = await asyncio.gather(
        register(stack, token, team, "m", "1.0.0", provenance={"signature": hostile}, expect=None),
        register(stack, token, team, "m", "2.0.0", provenance={"signature": good}, expect=None),
    )
    assert refused.status_code == 422, refused.text
    assert "names no public key" in refused.json()["detail"]
    assert registered.status_code == 201 and registered.json()["provenance"]["verified"] is True, registered.text

    # Over Kafka: rejected with its outcome, and the partition moves on to the command after it.
    async with Collector(stack.settings.kafka_bootstrap, "registry.events") as events:
        bad = register_event(team, "m", "3.0.0", token=token, provenance={"signature": hostile})
        after = register_event(team, "m", "4.0.0", token=token, provenance={"signature": good})
        await publish_raw(
            stack.settings.kafka_bootstrap,
            "registry.commands",
            [(*binary_record(command), f"{team}/m".encode()) for command in (bad, after)],
        )
        [rejected] = await events.wait_for(caused_by(bad.id))
        [next_one] = await events.wait_for(caused_by(after.id))
    assert header(rejected, "ce_type") == messages.COMMAND_REJECTED
    assert json.loads(rejected.value)["reason"] == "bad_signature"
    assert header(next_one, "ce_type") == messages.MODEL_VERSION_REGISTERED


async def test_signing_keys_are_ec_p256_or_p384_once_each_and_a_deleted_key_verifies_no_more(
    stack: EmbeddedStack, tmp_path: pathlib.Path
) -> None:
    team = team_name("sig")
    token = await team_key(stack, team, SCOPES)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    rsa_pem = rsa_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    async with acting_as(stack, "registration", token) as registration:
        keys = f"/v1/teams/{team}/signing-keys"
        refused = await registration.post(keys, json={"name": "rsa", "public_key": rsa_pem.decode()})
        assert refused.status_code == 422, refused.text
        assert "of type RSA" in refused.json()["detail"]
        p521 = await registration.post(keys, json={"name": "p521", "public_key": signing_key_pem(ec.SECP521R1())})
        assert p521.status_code == 422 and "secp521r1" in p521.json()["detail"]
        p384 = await registration.post(keys, json={"name": "p384", "public_key": signing_key_pem(ec.SECP384R1())})
        assert (p384.status_code, p384.json()["algorithm"]) == (201, "ecdsa-sha384-nistp384")

        private_key, public_key = key_pair(tmp_path)
        added = await registration.post(keys, json={"name": "ci", "public_key": public_key})
        assert added.status_code == 201, added.text
        again = await registration.post(keys, json={"name": "ci again", "public_key": public_key})
        assert again.status_code == 409 and added.json()["key_id"] in again.json()["detail"]
        assert (await registration.delete(f"{keys}/{added.json()['key_id']}")).status_code == 204
        assert (await registration.delete(f"{keys}/{added.json()['key_id']}")).status_code == 404
    signature = sign(model_dir(tmp_path), private_key)
    refused = await register(stack, token, team, "m", provenance={"signature": signature}, expect=422)
    assert refused.json()["type"] == "urn:registry:problem:bad_signature"


async def test_another_team_cannot_manage_this_teams_signing_keys(stack: EmbeddedStack) -> None:
    team, other = team_name("sig"), team_name("oth")
    key = await trust(stack, await team_key(stack, team, SCOPES), team, signing_key_pem())
    async with acting_as(stack, "registration", await team_key(stack, other, SCOPES)) as stranger:
        keys = f"/v1/teams/{team}/signing-keys"
        assert (await stranger.get(keys)).status_code == 403
        assert (await stranger.post(keys, json={"name": "x", "public_key": signing_key_pem()})).status_code == 403
        assert (await stranger.delete(f"{keys}/{key['key_id']}")).status_code == 403

    async with acting_as(stack, "registration", await team_key(stack, team, ["team:admin"])) as owner:
        listed = (await owner.get(f"/v1/teams/{team}/signing-keys")).json()["items"]
    assert [k["key_id"] for k in listed] == [key["key_id"]]  # untouched
