"""``registry audit export`` and ``registry audit check``: a team exports its audit log and checks it offline."""

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from registry_cli.stack import EmbeddedStack
from tests.http_tools import Team, acting_as, register
from tests.waiting import until

pytestmark = pytest.mark.e2e
REGISTRY = str(Path(sys.executable).with_name("registry"))


async def cli(stack: EmbeddedStack, token: str, *args: str) -> tuple[int, str]:
    """Run the user's CLI as ``token`` against the audit service; its exit code and stdout."""
    env = {**os.environ, "REGISTRY_API_KEY": token, "REGISTRY_AUDIT_URL": stack.url("audit")}
    env.pop("REGISTRY_GATEWAY_URL", None)
    process = await asyncio.create_subprocess_exec(
        REGISTRY, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    if process.returncode > 1:  # a failure: its line is on stderr
        return process.returncode, err.decode()
    return process.returncode, out.decode()


async def test_an_exported_audit_log_checks_offline_and_an_edited_entry_is_named(
    stack: EmbeddedStack, team: Team, tmp_path: Path
) -> None:
    await register(stack, team.writer, team.name, "audited")
    async with acting_as(stack, "audit", team.writer) as http:

        async def audited() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (await http.get("/v1/audit", params={"team": team.name})).json()["items"]
            return items or None

        await until(audited, timeout=30, what="the registration in the team's audit log")
        keys = (await http.get("/v1/audit/public-keys")).json()["keys"]
    code, out = await cli(stack, team.writer, "audit", "export", "--team", team.name)
    assert code == 0, out
    export = tmp_path / "audit.ndjson"
    export.write_text(out)
    key_options = [arg for key in keys for arg in ("--public-key", key["public_key"])]

    code, out = await cli(stack, team.writer, "audit", "check", str(export), *key_options)
    assert code == 0, out
    verdict = json.loads(out)
    assert verdict["ok"] and verdict["entries"] > 0 and "signatures" not in verdict

    lines = [json.loads(line) for line in export.read_text().splitlines()]
    edited = lines[0]
    field = "detail" if edited.get("detail") else "outcome"
    edited[field] = edited[field][:-1] + chr(ord(edited[field][-1]) ^ 1)
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out = await cli(stack, team.writer, "audit", "check", str(export), *key_options)
    assert code == 1, out
    assert json.loads(out)["first_broken"]["entry_id"] == edited["id"]


async def test_export_refuses_a_key_without_audit_read(stack: EmbeddedStack, team: Team) -> None:
    code, out = await cli(stack, team.approver, "audit", "export", "--team", team.name)
    assert code == 4, out  # refused: the approver's key lacks audit:read
