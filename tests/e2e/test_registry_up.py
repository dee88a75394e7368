"""``registry up`` as a user runs it: banner, readiness, port conflicts, clean shutdown."""

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from registry_cli.config import free_port
from shared.auth import generate_api_key

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REGISTRY = str(Path(sys.executable).with_name("registry"))


def stack_env(tmp_path: Path) -> dict[str, str]:
    names = ("KAFKA", "MONGO", "QUERY", "REGISTRATION", "DEPLOY_TRACKER", "AUDIT", "PROMETHEUS")
    ports = {name: str(free_port()) for name in names}
    return {
        **os.environ,
        **{f"REGISTRY_{name}_PORT": port for name, port in ports.items()},
        "REGISTRY_DATA_DIR": str(tmp_path / "data"),
        "REGISTRY_BOOTSTRAP_ADMIN_KEY": generate_api_key().token,
    }


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            child = int(entry.name)
            found |= {child} | descendants(child)
    return found


@pytest.mark.parametrize("flags", [[], ["--with-prometheus"]], ids=["make-run", "make-observe"])
async def test_up_serves_prints_the_key_and_leaves_nothing_behind(tmp_path: Path, flags: list[str]) -> None:
    env = stack_env(tmp_path)
    process = await asyncio.create_subprocess_exec(
        REGISTRY, "up", *flags, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout
    output: list[str] = []
    try:
        async with asyncio.timeout(90):
            while "Model Registry is up" not in "".join(output):
                line = await process.stdout.readline()
                assert line, "registry up exited early:\n" + "".join(output)
                output.append(line.decode())
            while "Ctrl-C" not in output[-1]:
                output.append((await process.stdout.readline()).decode())
        text = "".join(output)
        assert env["REGISTRY_BOOTSTRAP_ADMIN_KEY"] in text
        assert any(line.startswith("registration   | ") for line in output)
        children = descendants(process.pid)
        assert len(children) >= 6 + len(flags)  # broker, database, four services (and Prometheus)
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"http://127.0.0.1:{env['REGISTRY_QUERY_PORT']}/readyz")
            assert ready.status_code == 200
            if flags:
                prometheus = f"http://127.0.0.1:{env['REGISTRY_PROMETHEUS_PORT']}"
                assert f"Prometheus     {prometheus}" in text
                assert (await client.get(f"{prometheus}/-/ready")).status_code == 200
        assert (Path(env["REGISTRY_DATA_DIR"]) / "logs" / "query.log").stat().st_size > 0
    finally:
        process.send_signal(signal.SIGTERM)
        drain = asyncio.create_task(process.stdout.read())
        code = await asyncio.wait_for(process.wait(), 60)
        await drain
    assert code == 0
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert (Path(env["REGISTRY_DATA_DIR"]) / "mongo").is_dir()


async def test_a_port_in_use_is_a_one_line_error_naming_the_setting(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["REGISTRY_MONGO_PORT"])))
        blocker.listen()
        process = await asyncio.create_subprocess_exec(
            REGISTRY, "up", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    lines = [line for line in out.decode().splitlines() if line.strip()]
    assert process.returncode == 2
    assert len(lines) == 1 and "REGISTRY_MONGO_PORT" in lines[0] and env["REGISTRY_MONGO_PORT"] in lines[0]
