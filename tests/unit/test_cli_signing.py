"""``registry sign``, ``registry verify``, ``registry signing-keys`` and ``produce register --signature``.

Signatures are real (a key made per test, a small model under ``tmp_path``); the registry is a fake
answering the version (with the provenance registration would record) or the signing-key calls.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from registry_client import RegistryClient
from registry_client.cli import output
from registry_client.cli import produce as produce_module
from registry_client.cli import signing as signing_cli
from registry_client.cli.main import app
from registry_client.signing import sign_model
from tests.client_fakes import KEY, QUICK, Recorder, problem, version_json
from tests.unit.test_client_signing import flip_one_byte, recorded, signing_key_json, write_key, write_model

pytestmark = pytest.mark.unit

CLIENT_ENV = ("REGISTRY_API_KEY", "REGISTRY_TEAM", "REGISTRY_GATEWAY_URL", "REGISTRY_QUERY_URL")


def invoke(
    monkeypatch: pytest.MonkeyPatch, *args: str, answer: httpx.Response | None = None
) -> tuple[Result, Recorder]:
    """``registry ARGS`` against a fake registry answering ``answer``; the result and the requests it got."""
    recorder = Recorder(answer or httpx.Response(500))
    monkeypatch.setattr(
        output, "RegistryClient", partial(RegistryClient, transport=httpx.MockTransport(recorder), retry=QUICK)
    )
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, list(args), env={"REGISTRY_API_KEY": KEY}, terminal_width=200)
    return result, recorder


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return write_key(tmp_path)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_model(tmp_path)


def version_with(provenance: dict[str, Any] | None) -> httpx.Response:
    return httpx.Response(200, json=version_json("fraud", "card", "1.4.0", provenance=provenance))


class TestSign:
    def test_it_prints_the_signature_as_json(self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path) -> None:
        result, recorder = invoke(monkeypatch, "sign", str(model), "--key", str(key))
        assert result.exit_code == 0, result.output
        signature = json.loads(result.stdout)
        assert {f["name"] for f in recorded(signature)["manifest"]["files"]} == {
            "config.json",
            "weights.bin",
            "tokenizer/vocab.txt",
        }
        assert "signed 3 files" in result.stderr and recorder.requests == []

    def test_a_signature_written_inside_the_model_is_left_out_of_it(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path
    ) -> None:
        result, _ = invoke(monkeypatch, "sign", str(model), "--key", str(key), "-o", str(model / "model.sig"))
        assert result.exit_code == 0, result.output
        provenance = recorded(json.loads((model / "model.sig").read_text()))
        assert "model.sig" not in {f["name"] for f in provenance["manifest"]["files"]}
        assert "model.sig" in provenance["manifest"]["serialization"]["ignore_paths"]

    def test_an_encrypted_key_takes_its_password_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, tmp_path: Path
    ) -> None:
        key = write_key(tmp_path, password=b"s3cret")
        monkeypatch.setenv("REGISTRY_SIGNING_KEY_PASSWORD", "s3cret")
        result, _ = invoke(monkeypatch, "sign", str(model), "--key", str(key), "-o", str(tmp_path / "model.sig"))
        assert result.exit_code == 0, result.output
        monkeypatch.delenv("REGISTRY_SIGNING_KEY_PASSWORD")
        result, _ = invoke(monkeypatch, "sign", str(model), "--key", str(key))
        assert result.exit_code == 2 and "cannot sign" in result.stderr

    def test_a_file_that_is_no_key_is_a_usage_error(self, monkeypatch: pytest.MonkeyPatch, model: Path) -> None:
        result, _ = invoke(monkeypatch, "sign", str(model), "--key", str(model / "config.json"))
        assert result.exit_code == 2 and "cannot sign" in result.stderr


class TestVerify:
    def test_matching_files_exit_0(self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path) -> None:
        provenance = recorded(sign_model(model, key))
        result, recorder = invoke(
            monkeypatch, "verify", "fraud", "card", "1.4.0", str(model), answer=version_with(provenance)
        )
        assert result.exit_code == 0, result.output
        assert "fraud/card 1.4.0: all 3 files match" in result.stdout and provenance["manifest_digest"] in result.stdout
        [request] = recorder.requests
        assert (request.method, request.url.path) == ("GET", "/v1/models/fraud/card/versions/1.4.0")

    def test_a_flipped_byte_exits_5_naming_the_file(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path
    ) -> None:
        provenance = recorded(sign_model(model, key))
        flip_one_byte(model / "tokenizer" / "vocab.txt")
        (model / "notes.md").write_text("added\n")
        result, _ = invoke(monkeypatch, "verify", "fraud", "card", "1.4.0", str(model), answer=version_with(provenance))
        assert result.exit_code == output.ExitCode.TAMPERED
        assert "2 mismatches against 3 signed files" in result.stdout
        lines = result.stdout.splitlines()
        assert any("tokenizer/vocab.txt" in line and "changed" in line for line in lines)
        assert any("notes.md" in line and "unexpected" in line for line in lines)

    def test_json_lists_the_mismatches(self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path) -> None:
        provenance = recorded(sign_model(model, key))
        (model / "weights.bin").unlink()
        args = ("verify", "fraud", "card", "1.4.0", str(model), "--json")
        result, _ = invoke(monkeypatch, *args, answer=version_with(provenance))
        assert result.exit_code == 5
        verdict = json.loads(result.stdout)
        assert verdict["ok"] is False and verdict["checked"] == 3 and verdict["signer"]["name"] == "ci"
        assert [(m["name"], m["problem"], m["actual"]) for m in verdict["mismatches"]] == [
            ("weights.bin", "missing", None)
        ]

    def test_a_version_registered_without_a_signature_exits_6(
        self, monkeypatch: pytest.MonkeyPatch, model: Path
    ) -> None:
        result, _ = invoke(monkeypatch, "verify", "fraud", "card", "1.4.0", str(model), answer=version_with(None))
        assert result.exit_code == output.ExitCode.UNVERIFIED
        assert "registered without a signature" in result.stderr

    def test_an_unverified_provenance_exits_6(self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path) -> None:
        provenance = recorded(sign_model(model, key), verified=False)
        result, _ = invoke(monkeypatch, "verify", "fraud", "card", "1.4.0", str(model), answer=version_with(provenance))
        assert result.exit_code == 6 and "not verified" in result.stderr

    def test_an_unknown_version_exits_3(self, monkeypatch: pytest.MonkeyPatch, model: Path) -> None:
        answer = problem(404, "not_found", "no such version")
        result, _ = invoke(monkeypatch, "verify", "fraud", "card", "9.9.9", str(model), answer=answer)
        assert result.exit_code == 3 and "no such version" in result.stderr

    def test_a_file_that_cannot_be_read_while_hashing_is_a_clear_error(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path
    ) -> None:
        provenance = recorded(sign_model(model, key))

        def unreadable(*args: Any, **kwargs: Any) -> Any:
            raise PermissionError(13, "Permission denied", str(model / "weights.bin"))

        monkeypatch.setattr(signing_cli, "verify_model_files", unreadable)
        result, _ = invoke(monkeypatch, "verify", "fraud", "card", "1.4.0", str(model), answer=version_with(provenance))
        assert result.exit_code == 1 and "cannot read the files of" in result.stderr
        assert "Permission denied" in result.stderr and "Traceback" not in result.output

    def test_a_path_that_does_not_exist_is_a_usage_error(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        result, recorder = invoke(monkeypatch, "verify", "fraud", "card", "1.4.0", str(tmp_path / "nowhere"))
        assert result.exit_code == 2 and recorder.requests == []


class TestShowingAVersion:
    def test_its_provenance_names_the_signer_and_the_manifest(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path
    ) -> None:
        provenance = recorded(sign_model(model, key))
        result, _ = invoke(monkeypatch, "versions", "show", "fraud", "card", "1.4.0", answer=version_with(provenance))
        assert result.exit_code == 0, result.output
        line = next(line for line in result.stdout.splitlines() if "provenance" in line)
        assert "verified: 3 files signed by ci" in line and provenance["manifest_digest"][:20] in result.stdout


class TestWithoutTheSigningExtra:
    def test_sign_and_verify_exit_2_naming_the_extra(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path
    ) -> None:
        provenance = recorded(sign_model(model, key))
        monkeypatch.setitem(sys.modules, "model_signing", None)  # as if not installed
        result, _ = invoke(monkeypatch, "sign", str(model), "--key", str(key))
        assert result.exit_code == 2 and "pip install 'registry-client[signing]'" in result.stderr
        result, _ = invoke(monkeypatch, "verify", "fraud", "card", "1.4.0", str(model), answer=version_with(provenance))
        assert result.exit_code == 2 and "pip install 'registry-client[signing]'" in result.stderr


class TestSigningKeys:
    def test_add_sends_the_pem_file(self, monkeypatch: pytest.MonkeyPatch, key: Path, tmp_path: Path) -> None:
        pem = tmp_path / "signing-key.pub.pem"
        answer = httpx.Response(201, json=signing_key_json())
        args = ("signing-keys", "add", "fraud", "--name", "ci", "--public-key", str(pem), "--description", "nightly")
        result, recorder = invoke(monkeypatch, *args, answer=answer)
        assert result.exit_code == 0, result.output
        [request] = recorder.requests
        assert (request.method, request.url.path) == ("POST", "/v1/teams/fraud/signing-keys")
        assert json.loads(request.content) == {"name": "ci", "public_key": pem.read_text(), "description": "nightly"}
        assert "sk_1" in result.stdout and "sha256:abab" in result.stdout

    def test_a_binary_key_file_is_a_usage_error(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        der = tmp_path / "signing-key.der"
        der.write_bytes(bytes([0x30, 0x59, 0xFF, 0xFE, 0x80]))
        args = ("signing-keys", "add", "fraud", "--name", "ci", "--public-key", str(der))
        result, recorder = invoke(monkeypatch, *args)
        assert result.exit_code == 2 and "not a PEM text file" in result.output and recorder.requests == []

    def test_list_prints_ids_and_fingerprints(self, monkeypatch: pytest.MonkeyPatch) -> None:
        answer = httpx.Response(
            200, json={"items": [signing_key_json("sk_1"), signing_key_json("sk_2", name="release")]}
        )
        result, _ = invoke(monkeypatch, "signing-keys", "list", "fraud", "--json", answer=answer)
        assert result.exit_code == 0, result.output
        assert [k["key_id"] for k in json.loads(result.stdout)] == ["sk_1", "sk_2"]

    def test_remove_deletes_the_key_and_an_unknown_one_exits_3(self, monkeypatch: pytest.MonkeyPatch) -> None:
        result, recorder = invoke(monkeypatch, "signing-keys", "remove", "fraud", "sk_1", answer=httpx.Response(204))
        assert result.exit_code == 0 and "removed sk_1" in result.stdout
        assert (recorder.requests[0].method, recorder.requests[0].url.path) == (
            "DELETE",
            "/v1/teams/fraud/signing-keys/sk_1",
        )
        result, _ = invoke(monkeypatch, "signing-keys", "remove", "fraud", "sk_9", answer=problem(404, "not_found"))
        assert result.exit_code == 3

    def test_a_refusal_exits_4(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key: Path) -> None:
        args = ("signing-keys", "add", "fraud", "--name", "ci", "--public-key", str(tmp_path / "signing-key.pub.pem"))
        result, _ = invoke(monkeypatch, *args, answer=problem(403, "forbidden", "needs team:admin"))
        assert result.exit_code == 4 and "needs team:admin" in result.stderr


class TestProduceWithASignature:
    def test_register_carries_the_file_as_provenance_signature(
        self, monkeypatch: pytest.MonkeyPatch, model: Path, key: Path, tmp_path: Path
    ) -> None:
        signature = sign_model(model, key)
        (tmp_path / "model.sig").write_text(json.dumps(signature))
        sent: list[dict[str, Any]] = []

        async def publish(kind: str, data: dict[str, Any], **options: Any) -> str:
            sent.append(data)
            return "ce-1"

        monkeypatch.setattr(produce_module, "produce_message", publish)
        data = json.dumps({"team": "fraud", "name": "card", "version": "1.4.0", "framework": "xgboost"})
        args = ("produce", "register", "--data", data, "--signature", str(tmp_path / "model.sig"))
        result, _ = invoke(monkeypatch, *args)
        assert result.exit_code == 0, result.output
        assert sent[0]["provenance"] == {"signature": signature} and sent[0]["version"] == "1.4.0"

    def test_another_kind_with_a_signature_is_a_usage_error(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        (tmp_path / "model.sig").write_text("{}")
        args = ("produce", "alias", "--data", "{}", "--signature", str(tmp_path / "model.sig"))
        result, _ = invoke(monkeypatch, *args)
        assert result.exit_code == 2 and "register only" in result.output
