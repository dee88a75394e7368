"""``registry up`` as a user runs it: banner, readiness, port conflicts, clean shutdown."""

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from registry_cli.config import free_ports
from registry_contract.auth import generate_api_key
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.own_stack]
REGISTRY = str(Path(sys.executable).with_name("registry"))


def stack_env(tmp_path: Path) -> dict[str, str]:
    names = ("KAFKA", "MONGO", "AUDIT_MONGO", "QUERY", "REGISTRATION", "DEPLOY_TRACKER", "AUDIT", "PROMETHEUS")
    ports = {name: str(port) for name, port in zip(names, free_ports(len(names)), strict=True)}
    return {
        **os.environ,
        **{f"REGISTRY_STACK_{name}_PORT": port for name, port in ports.items()},
        "REGISTRY_STACK_DATA_DIR": str(tmp_path / "data"),
        "REGISTRY_STACK_BOOTSTRAP_ADMIN_KEY": generate_api_key().token,
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
        assert env["REGISTRY_STACK_BOOTSTRAP_ADMIN_KEY"] in text
        assert any(line.startswith("registration   | ") for line in output)
        children = descendants(process.pid)
        assert len(children) >= 6 + len(flags)  # broker, database, four services (and Prometheus)
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"http://127.0.0.1:{env['REGISTRY_STACK_QUERY_PORT']}/readyz")
            assert ready.status_code == 200
            if flags:
                prometheus = f"http://127.0.0.1:{env['REGISTRY_STACK_PROMETHEUS_PORT']}"
                assert f"Prometheus     {prometheus}" in text
                assert (await client.get(f"{prometheus}/-/ready")).status_code == 200
        assert (Path(env["REGISTRY_STACK_DATA_DIR"]) / "logs" / "query.log").stat().st_size > 0
    finally:
        process.send_signal(signal.SIGTERM)
        drain = asyncio.create_task(process.stdout.read())
        code = await asyncio.wait_for(process.wait(), 60)
        await drain
    assert code == 0
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert (Path(env["REGISTRY_STACK_DATA_DIR"]) / "mongo").is_dir()
    assert (Path(env["REGISTRY_STACK_DATA_DIR"]) / "audit-mongo").is_dir()  # the audit log's own server


class Up:
    """A running `registry up` and everything it printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process, self.output = process, list[str]()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout
        async for line in self.process.stdout:
            self.output.append(line.decode())

    @property
    def text(self) -> str:
        return "".join(self.output)

    async def wait_for(self, needle: str, timeout: float = 90) -> None:
        async def printed() -> bool:
            assert self.process.returncode is None, "registry up exited:\n" + self.text
            return needle in self.text

        await until(printed, timeout=timeout, what=f"registry up printing {needle!r}", interval=0.1)

    async def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 60)
        await self._reader
        return code


async def start_up(env: dict[str, str]) -> Up:
    process = await asyncio.create_subprocess_exec(
        REGISTRY, "up", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    up = Up(process)
    await up.wait_for("Ctrl-C stops everything")
    return up


def service_pid(up: Up, module: str) -> int:
    for pid in descendants(up.process.pid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", module.encode()]:
                return pid
    raise AssertionError(f"no {module} process")


async def wait_ready(url: str, timeout: float = 60) -> None:
    async with httpx.AsyncClient() as client:

        async def ready() -> bool:
            try:
                return (await client.get(f"{url}/readyz")).status_code == 200
            except httpx.HTTPError:  # not listening yet
                return False

        await until(ready, timeout=timeout, what=f"{url} ready", interval=0.2)


async def test_a_killed_service_is_restarted_while_the_rest_keeps_running(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    up = await start_up(env)
    try:
        broker_and_database = {
            pid for pid in descendants(up.process.pid) if b"-m" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        }
        os.kill(service_pid(up, "registration"), signal.SIGKILL)
        await up.wait_for("registration restarted (restart 1")
        await wait_ready(f"http://127.0.0.1:{env['REGISTRY_STACK_REGISTRATION_PORT']}")
        assert broker_and_database <= descendants(up.process.pid)  # never stopped
        assert "registration exited with code -9" in up.text
    finally:
        assert await up.stop() == 0


async def test_a_restart_with_kept_data_audits_new_work_and_mints_no_second_key(tmp_path: Path) -> None:
    # After a restart with the same .data/ the broker's offsets start at 0 again: new records are
    # still audited, not skipped as already audited; and a start mints no second admin key.
    env = {k: v for k, v in stack_env(tmp_path).items() if k != "REGISTRY_STACK_BOOTSTRAP_ADMIN_KEY"}
    registration = f"http://127.0.0.1:{env['REGISTRY_STACK_REGISTRATION_PORT']}"
    audit = f"http://127.0.0.1:{env['REGISTRY_STACK_AUDIT_PORT']}"
    up = await start_up(env)
    try:
        token = re.search(r"(mr_[A-Za-z0-9]{8}_[A-Za-z0-9]{43,})", up.text)
        assert token, up.text
        headers = {"Authorization": f"Bearer {token.group(1)}"}
        body = {"version": "1.0.0", "framework": "onnx", "artifact_uri": "s3://bucket/key"}
        async with httpx.AsyncClient(headers=headers) as http:
            assert (await http.post(f"{registration}/v1/models/kept/m/versions", json=body)).status_code == 201
            await audited(http, audit, "registry.event.model_version_registered", count=1)
    finally:
        assert await up.stop() == 0
    up = await start_up(env)
    try:
        assert "shown at the first start" in up.text and token.group(1) not in up.text
        async with httpx.AsyncClient(headers=headers) as http:
            second = {**body, "version": "1.1.0"}
            assert (await http.post(f"{registration}/v1/models/kept/m/versions", json=second)).status_code == 201
            await audited(http, audit, "registry.event.model_version_registered", count=2)
            keys = (await http.get(f"{registration}/v1/teams/platform/api-keys")).json()["items"]
            verdict = (await http.get(f"{audit}/v1/audit/verify", params={"full": "true"})).json()
        assert len(keys) == 1 and verdict["ok"] is True
    finally:
        assert await up.stop() == 0


async def audited(http: httpx.AsyncClient, audit: str, type_: str, *, count: int, timeout: float = 30) -> None:
    async def listed() -> list[object] | None:
        items = (await http.get(f"{audit}/v1/audit", params={"type": type_, "model": "kept/m"})).json()["items"]
        return items if len(items) >= count else None

    items = await until(listed, timeout=timeout, what=f"{count} {type_} entries of kept/m", interval=0.2)
    assert len(items) == count, items


async def test_a_port_in_use_is_a_one_line_error_naming_the_setting(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["REGISTRY_STACK_MONGO_PORT"])))
        blocker.listen()
        process = await asyncio.create_subprocess_exec(
            REGISTRY, "up", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    lines = [line for line in out.decode().splitlines() if line.strip()]
    assert process.returncode == 2
    assert len(lines) == 1 and "REGISTRY_STACK_MONGO_PORT" in lines[0] and env["REGISTRY_STACK_MONGO_PORT"] in lines[0]
