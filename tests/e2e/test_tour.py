"""The tours run as written: every ``sh`` and ``python`` block of README.md and of the tutorial, in order.

Each document runs as one bash script against the running stack, as a newcomer pastes it into a
second shell beside ``make run``: the text sets every key and variable it uses (the test gives
only ``$ADMIN``, the bootstrap key ``make run`` prints). The stack's own ports replace the local
stack's (8080-8083, 9092), a fresh team replaces ``fraud`` (a session's stack is shared), and
``curl`` fails on any refusal, so a step that answers 4xx or 5xx fails the tour.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY
from tests.github_actions import job_steps, job_token, token_endpoint
from tests.http_tools import ADMIN, team_name
from tests.oidc_provider import OidcProvider
from tests.waiting import until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
# Each tour: the documents a newcomer follows one after the other, in one shell (the command
# line, Kafka, deployments and assistants guides go on from the tutorial's state and variables).
TOURS = {
    "readme": ["README.md", "docs/tutorial.md#5. "],  # the README's tour goes on at the tutorial's step 5
    "tutorial": [
        "docs/tutorial.md",
        "docs/guides/cli.md",
        "docs/guides/kafka.md",
        "docs/guides/deployments.md",
        "docs/guides/assistants.md",
    ],
}
# The team admin's trust rule, then the guide's GitHub Actions job (test_the_github_job_…).
IDENTITY_TOUR = ["docs/guides/identity.md"]
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
LOCAL_PORTS = {"8080": "query", "8081": "registration", "8082": "deploy-tracker", "8083": "audit"}
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
"""


def runnable_blocks(text: str) -> list[tuple[str, str]]:
    """The document's ``sh`` and ``python`` blocks in order, without the one that starts the stack."""
    blocks = re.findall(r"^```(sh|python)\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    return [(kind, code) for kind, code in blocks if not code.strip().startswith("make run")]


def here(code: str, stack: EmbeddedStack, team: str, issuer: str | None = None) -> str:
    """``code`` aimed at the test's stack and team instead of the local stack's ports and ``fraud``.

    With ``issuer``, GitHub's token issuer is the test's provider.
    """
    for port, service in LOCAL_PORTS.items():
        address = stack.url(service).removeprefix("http://")
        code = re.sub(rf"\b(localhost|127\.0\.0\.1):{port}\b", address, code)
    if issuer is not None:
        code = code.replace(GITHUB_ISSUER, issuer)
    return re.sub(r"\bfraud\b", team, code)


def read(document: str) -> str:
    """``path``, or ``path#heading``: the document from its section ``## heading`` on."""
    path, _, heading = document.partition("#")
    text = (ROOT / path).read_text()
    return text[text.index(f"\n## {heading}") :] if heading else text


def blocks_of(tour: list[str]) -> list[tuple[str, int, str, str]]:
    """(document, number, kind, code) of every block of the tour's documents, in reading order."""
    return [
        (document, number, kind, code)
        for document in tour
        for number, (kind, code) in enumerate(runnable_blocks(read(document)), 1)
    ]


def script(tour: list[str], stack: EmbeddedStack, team: str, issuer: str | None = None) -> str:
    parts = [PRELUDE]
    for document, number, kind, code in blocks_of(tour):
        parts.append(f"echo '=== {document} block {number}' >&2")
        code = here(code, stack, team, issuer)
        parts.append(code if kind == "sh" else f".venv/bin/python - <<'PYTHON'\n{code}PYTHON\n")
    return "\n".join(parts)


def shell_environment(stack: EmbeddedStack) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
    env.update(
        ADMIN=ADMIN_KEY.token,
        KAFKA_BOOTSTRAP_SERVERS=stack.settings.kafka_bootstrap,
        AUDIT_MONGODB_URI=stack.settings.audit_mongodb_uri,
        **{f"REGISTRY_{service.upper().replace('-', '_')}_URL": stack.url(service) for service in LOCAL_PORTS.values()},
    )
    return env


async def run_bash(code: str, *, cwd: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """Run ``code`` in bash; its exit code and output (stdout and stderr, interleaved)."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", code, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    return process.returncode, output.decode(errors="replace")


def clone_directory(stack: EmbeddedStack, tmp_path: Path) -> Path:
    """A working directory like a clone's: its .venv, and the stack's data as .data."""
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / ".data").symlink_to(stack.settings.data_dir)
    return tmp_path


@pytest.mark.parametrize("tour", TOURS)
async def test_the_tour_runs_as_written(
    stack: EmbeddedStack, oidc_provider: OidcProvider, tour: str, tmp_path: Path
) -> None:
    team = team_name()
    code = script(TOURS[tour], stack, team, oidc_provider.issuer)
    returncode, text = await run_bash(code, cwd=clone_directory(stack, tmp_path), env=shell_environment(stack))
    assert returncode == 0, f"the {tour} tour stopped with exit code {returncode}:\n{text[-6000:]}"
    assert text.count("=== ") == len(blocks_of(TOURS[tour]))
    assert "card-" in text and team in text  # the steps answered with the tour's model


async def test_the_github_job_of_the_identity_guide_registers_and_reports_with_only_a_token(
    stack: EmbeddedStack, oidc_provider: OidcProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = team_name()
    directory = clone_directory(stack, tmp_path)
    # The team admin's part of the guide: the trust rule (with the test's provider as GitHub).
    returncode, text = await run_bash(
        script(IDENTITY_TOUR, stack, team, oidc_provider.issuer), cwd=directory, env=shell_environment(stack)
    )
    assert returncode == 0, text[-4000:]
    (workflow,) = re.findall(r"^```yaml\n(.*?)^```$", read("docs/guides/identity.md"), flags=re.DOTALL | re.MULTILINE)
    await stack.start_gateway()
    try:
        env, steps = job_steps(here(workflow, stack, team), {"REGISTRY_URL": stack.gateway_url})
        repository, sha, run_id = f"acme/{team}-model", secrets.token_hex(20), str(secrets.randbelow(10**9))
        token = await job_token(oidc_provider, repository, sha, run_id)
        ca = str(stack.settings.data_dir / "tls" / "ca.pem")
        with token_endpoint(token) as (request_url, request_token):
            runner = {
                **{k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
                **env,
                "ACTIONS_ID_TOKEN_REQUEST_URL": request_url,
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
                "GITHUB_REPOSITORY": repository,
                "GITHUB_SHA": sha,
                "GITHUB_RUN_ID": run_id,
                "CURL_CA_BUNDLE": ca,  # the gateway's certificate is the stack's own CA's
            }
            for step in steps:
                returncode, text = await run_bash(step, cwd=directory, env=runner)
                assert returncode == 0, f"the job's step failed ({returncode}):\n{text[-4000:]}"
    finally:
        await stack.stop_gateway()
    assert f'"team":"{team}"' in text.replace(" ", "") and '"outcome":"applied"' in text.replace(" ", "")

    async def registered() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=stack.url("query"), headers=ADMIN, timeout=30) as http:
            # "fraud" is the tour's team wherever it stands, the model's name included.
            version = await http.get(f"/v1/models/{team}/card-{team}-xgb/versions/1.5.0")
        return dict(version.json()) if version.status_code == 200 else None

    version = await until(registered, timeout=15, what="the job's version in the read model")
    assert version["source"]["code_commit"] == sha


def test_every_document_of_a_tour_has_runnable_blocks() -> None:
    assert all(runnable_blocks(read(document)) for tour in TOURS.values() for document in tour)
