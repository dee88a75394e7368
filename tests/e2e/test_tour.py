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
from pathlib import Path

import pytest

from registry_cli.stack import EmbeddedStack
from tests.factories import ADMIN_KEY
from tests.http_tools import team_name

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
LOCAL_PORTS = {"8080": "query", "8081": "registration", "8082": "deploy-tracker", "8083": "audit"}
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
"""


def runnable_blocks(text: str) -> list[tuple[str, str]]:
    """The document's ``sh`` and ``python`` blocks in order, without the one that starts the stack."""
    blocks = re.findall(r"^```(sh|python)\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    return [(kind, code) for kind, code in blocks if not code.strip().startswith("make run")]


def here(code: str, stack: EmbeddedStack, team: str) -> str:
    """``code`` aimed at the test's stack and team instead of the local stack's ports and ``fraud``."""
    for port, service in LOCAL_PORTS.items():
        address = stack.url(service).removeprefix("http://")
        code = re.sub(rf"\b(localhost|127\.0\.0\.1):{port}\b", address, code)
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


def script(tour: list[str], stack: EmbeddedStack, team: str) -> str:
    parts = [PRELUDE]
    for document, number, kind, code in blocks_of(tour):
        parts.append(f"echo '=== {document} block {number}' >&2")
        code = here(code, stack, team)
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


@pytest.mark.parametrize("tour", TOURS)
async def test_the_tour_runs_as_written(stack: EmbeddedStack, tour: str, tmp_path: Path) -> None:
    # The tour's working directory is a clone's: its .venv, and the stack's data as .data.
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / ".data").symlink_to(stack.settings.data_dir)
    team = team_name()
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script(TOURS[tour], stack, team),
        cwd=tmp_path,
        env=shell_environment(stack),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode(errors="replace")
    assert process.returncode == 0, f"the {tour} tour stopped with exit code {process.returncode}:\n{text[-6000:]}"
    assert text.count("=== ") == len(blocks_of(TOURS[tour]))
    assert "card-" in text and team in text  # the steps answered with the tour's model


def test_every_document_of_a_tour_has_runnable_blocks() -> None:
    assert all(runnable_blocks(read(document)) for tour in TOURS.values() for document in tour)
