"""``registry backup`` / ``registry restore`` on a stack of its own: under write load, wiped, and to a point in time."""

import asyncio
import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from registry_cli.backup import BackupError, backup, restore, sign_manifest
from registry_cli.config import StackSettings
from registry_cli.secrets import load_or_create
from registry_cli.stack import EmbeddedStack
from tests.throwaway import throwaway_settings, unthrottled_admin_key
from tests.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.own_stack]
ARTIFACT = {"framework": "onnx", "artifact_uri": "s3://bucket/model.onnx"}


class Running:
    """A stack started on a data directory, with a key that is never throttled."""

    def __init__(self, stack: EmbeddedStack, token: str) -> None:
        self.stack, self.headers = stack, {"Authorization": f"Bearer {token}"}

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.stack.url(service), headers=self.headers, timeout=30)

    async def register(self, team: str, name: str, version: str) -> int:
        async with self.client("registration") as http:
            response = await http.post(f"/v1/models/{team}/{name}/versions", json={"version": version, **ARTIFACT})
            return response.status_code

    async def versions(self, team: str, name: str) -> set[str]:
        async with self.client("query") as http:
            response = await http.get(f"/v1/models/{team}/{name}/versions", params={"limit": 200})
            if response.status_code == 404:
                return set()
            assert response.status_code == 200, response.text
            return {item["version"] for item in response.json()["items"]}

    async def has_exactly(self, team: str, name: str, versions: set[str]) -> bool:
        """Whether the query lists exactly ``versions`` (after a restart its projection may still be catching up)."""
        return await self.versions(team, name) == versions

    async def audit_verifies(self) -> bool:
        async with self.client("audit") as http:
            verdict = (await http.get("/v1/audit/verify")).json()
            return bool(verdict["ok"])


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return throwaway_settings(tmp_path / "data")


async def started(settings: StackSettings, token: str | None = None) -> Running:
    stack = EmbeddedStack(settings, quiet=True)
    await stack.start_infrastructure()
    await stack.start_services()
    return Running(stack, token or await unthrottled_admin_key(stack, name="backup-test"))


@pytest.fixture
async def first_run(settings: StackSettings) -> AsyncIterator[Running]:
    running = await started(settings)
    try:
        yield running
    finally:
        await running.stack.stop()


def wipe(settings: StackSettings) -> None:
    for name in ("mongo", "audit-mongo"):
        shutil.rmtree(settings.data_dir / name)


async def test_a_backup_under_write_load_restores_every_acknowledged_version_and_a_verifying_log(
    settings: StackSettings, first_run: Running, tmp_path: Path
) -> None:
    team, name = f"b{uuid.uuid4().hex[:8]}", "churn"
    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def write_load() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            if await first_run.register(team, name, f"1.{n}.0") == 201:
                acknowledged.append(f"1.{n}.0")

    writer = asyncio.create_task(write_load())
    try:

        async def some_written() -> bool:
            return len(acknowledged) >= 15

        await until(some_written, timeout=60, what="15 registrations acknowledged")
        before_backup = set(acknowledged)
        await backup(settings, tmp_path / "backup")

        async def more_written() -> bool:
            return len(acknowledged) >= len(before_backup) + 10

        await until(more_written, timeout=60, what="10 more registrations after the backup")
    finally:
        stop.set()
        await writer
    token = first_run.headers["Authorization"].removeprefix("Bearer ")
    await first_run.stack.stop()
    wipe(settings)

    report = restore(settings, tmp_path / "backup")
    assert report["to_time"] is None
    again = await started(settings, token)  # the key was made before the backup: it is back too
    try:
        # Reads come from the query's projection, which catches up from registration's restored log
        # after it starts: a read without a write's token is only eventually complete.
        async def caught_up() -> set[str] | None:
            found = await again.versions(team, name)
            return found if before_backup <= found else None

        restored = await until(caught_up, timeout=30, what="every version acknowledged before the backup")
        assert restored <= set(acknowledged)  # and nothing that was never acknowledged
        assert len(restored) < len(acknowledged)  # the later ones are not: it is the backup's state
        assert await again.audit_verifies()
    finally:
        await again.stack.stop()


async def test_a_restore_to_a_time_between_two_registrations_has_only_the_first(
    settings: StackSettings, first_run: Running, tmp_path: Path
) -> None:
    team, name = f"p{uuid.uuid4().hex[:8]}", "pitr"
    assert await first_run.register(team, name, "1.0.0") == 201
    await asyncio.sleep(1.0)
    between = datetime.now(UTC)
    await asyncio.sleep(1.0)
    assert await first_run.register(team, name, "2.0.0") == 201

    async def both_readable() -> bool:
        return await first_run.versions(team, name) == {"1.0.0", "2.0.0"}

    await until(both_readable, timeout=30, what="both versions readable")
    await backup(settings, tmp_path / "backup")
    token = first_run.headers["Authorization"].removeprefix("Bearer ")
    await first_run.stack.stop()

    with pytest.raises(BackupError, match="cannot restore to a later time"):
        restore(settings, tmp_path / "backup", to_time=datetime.now(UTC))
    report = restore(settings, tmp_path / "backup", to_time=between)
    assert report["mongo_operations_replayed"] > 0
    assert Path(report["mongo_kept_at"]).is_dir()  # the data it replaced is kept, not deleted
    again = await started(settings, token)
    try:
        await until(lambda: again.has_exactly(team, name, {"1.0.0"}), timeout=30, what="1.0.0 alone restored")
        assert await again.audit_verifies()
        # The restored database keeps its history: a later backup still replays from the start.
        # (A replay that started a fresh oplog would make the next point-in-time restore rebuild only
        # what was written after the first one, silently.)
        assert await again.register(team, name, "3.0.0") == 201
        await asyncio.sleep(1.0)
        later = datetime.now(UTC)
        await backup(settings, tmp_path / "second")
    finally:
        await again.stack.stop()
    restore(settings, tmp_path / "second", to_time=later)
    third = await started(settings, token)
    try:
        await until(lambda: third.has_exactly(team, name, {"1.0.0", "3.0.0"}), timeout=30, what="1.0.0 and 3.0.0")
    finally:
        await third.stack.stop()


async def test_a_restore_refuses_a_running_stack_and_an_altered_archive(
    settings: StackSettings, first_run: Running, tmp_path: Path
) -> None:
    umask = os.umask(0o022)  # were the folder and archives to follow it, they would be readable by all
    try:
        await backup(settings, tmp_path / "backup")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "backup").stat().st_mode) == 0o700
    assert {stat.S_IMODE(file.stat().st_mode) for file in (tmp_path / "backup").iterdir()} == {0o600}
    with pytest.raises(BackupError, match="stop the stack"):
        restore(settings, tmp_path / "backup")
    await first_run.stack.stop()
    archive = tmp_path / "backup" / "audit-mongo.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(BackupError, match="altered"):
        restore(settings, tmp_path / "backup")
    # An archive that matches its manifest but cannot be restored fails before anything moves:
    # otherwise the shared server's archive would be extracted and the audit one's not, half-restored.
    manifest_path = tmp_path / "backup" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    archive.write_bytes(b"not an archive")
    manifest["archives"]["audit-mongo"]["sha256"] = hashlib.sha256(b"not an archive").hexdigest()
    backup_key = bytes.fromhex(load_or_create(settings.data_dir).backup_key)
    manifest_path.write_text(json.dumps(sign_manifest(manifest, backup_key)))  # as the key's holder could
    with pytest.raises(BackupError, match="before anything was replaced"):
        restore(settings, tmp_path / "backup")
    assert (settings.data_dir / "mongo").is_dir() and not list(settings.data_dir.glob("*.before-restore-*"))
    assert not list(settings.data_dir.glob("*.restoring-*"))
