"""``registry backup`` and ``registry restore``: the embedded stack's databases, whole or to a point in time.

The stack keeps its data on two SecantusDB servers (the shared one and the audit log's). A backup
asks each running server for a consistent archive of its WiredTiger files
(``secantusAdmin.backupArchive``: a checkpoint, then the snapshot's files, taken under the
server's storage lock, so writes wait a moment rather than tear it), the shared server first:
the audit log, derived from the records of the shared one's changes, is then never behind it.
Each archive carries the server's oplog from its first write, which is what point-in-time
recovery replays.

A restore runs with the stack stopped. It moves each server's data directory aside (never
deletes it) and puts the archive's in its place: extracted as it is, or, with a target time,
rebuilt by replaying the archive's oplog up to that time (every transaction all or nothing).
On real infrastructure the same jobs are mongodump/mongorestore's: see docs/operations.md,
"Backups and point-in-time recovery".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from secantus.oplog_replay import restore_archive_to_timestamp
from secantus.storage import extract_backup_archive

from registry_cli.config import StackSettings
from registry_cli.processes import PortInUse, check_port_free

MANIFEST = "manifest.json"
SERVER_NAMES = ("mongo", "audit-mongo")  # each server's archive, named as its data directory


@dataclass(frozen=True)
class Server:
    """One database server of the stack: its archive's name and where it keeps its data."""

    name: str
    uri: str
    port: int
    data_dir: Path


def servers(settings: StackSettings) -> list[Server]:
    """The stack's servers, in backup order: the shared one, then the audit log's."""
    shared, audit = SERVER_NAMES
    return [
        Server(shared, settings.mongodb_uri, settings.mongo_port, settings.mongo_data_dir),
        Server(audit, settings.audit_mongodb_uri, settings.audit_mongo_port, settings.audit_mongo_data_dir),
    ]


class BackupError(RuntimeError):
    """A backup or restore that cannot go ahead; the message says why and what to do."""


async def backup(settings: StackSettings, into: Path) -> dict[str, Any]:
    """Archive every server of the running stack into ``into`` (created; must not exist) with a manifest."""
    await asyncio.to_thread(_new_directory, into)
    started = datetime.now(UTC)
    archives: dict[str, Any] = {}
    for server in servers(settings):
        target = (into / f"{server.name}.tar.gz").resolve()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.uri, serverSelectionTimeoutMS=5000)
        try:
            result = await client.admin.command({"secantusAdmin.backupArchive": 1, "outputPath": str(target)})
        finally:
            await client.close()
        digest = await asyncio.to_thread(_sha256, target)
        archives[server.name] = {"file": target.name, "bytes": int(result["sizeBytes"]), "sha256": digest}
    manifest = {
        "format": "registry-embedded-backup/1",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "archives": archives,
    }
    await asyncio.to_thread((into / MANIFEST).write_text, json.dumps(manifest, indent=2))
    return manifest


def _new_directory(path: Path) -> None:
    if path.exists():
        raise BackupError(f"{path} exists already: back up into a new directory")
    path.mkdir(parents=True)


def restore(settings: StackSettings, source: Path, *, to_time: datetime | None = None) -> dict[str, Any]:
    """Put the backup in ``source`` in place of the stack's data (stopped); to ``to_time`` if given.

    Each server's current data directory is kept beside it as ``<name>.before-restore-<time>``.
    """
    manifest = _checked_manifest(source)
    if to_time is not None:
        to_time = to_time.astimezone(UTC)
        started = datetime.fromisoformat(manifest["started_at"])
        if to_time > started:
            raise BackupError(
                f"{source} was taken at {started.isoformat()}: it cannot restore to a later time "
                f"({to_time.isoformat()}); use a backup taken after it"
            )
    for server in servers(settings):
        try:
            check_port_free(settings.host, server.port, f"{server.name} server", "")
        except PortInUse:
            raise BackupError(
                f"something listens on {settings.host}:{server.port}: stop the stack (registry up) before restoring"
            ) from None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict[str, Any] = {"source": str(source), "to_time": to_time.isoformat() if to_time else None}
    # Every server is rebuilt beside its data first; only when all are built is anything moved,
    # so a failure (a corrupt archive, an oplog that cannot reach the time) changes nothing.
    staged: list[tuple[Server, Path]] = []
    try:
        for server in servers(settings):
            archive = source / manifest["archives"][server.name]["file"]
            staging = server.data_dir.with_name(f"{server.data_dir.name}.restoring-{stamp}")
            staged.append((server, staging))
            if to_time is None:
                extract_backup_archive(str(archive), str(staging))
            else:
                # carry_oplog keeps the replayed history in the restored oplog: a later backup of
                # this database can then still replay from its first write.
                stats = restore_archive_to_timestamp(str(archive), str(staging), to_wall=to_time, carry_oplog=True)
                report[f"{server.name}_operations_replayed"] = stats["opsApplied"]
    except (RuntimeError, ValueError, OSError, tarfile.TarError) as exc:
        for _, staging in staged:
            shutil.rmtree(staging, ignore_errors=True)
        raise BackupError(f"restore failed before anything was replaced: {exc}") from exc
    for server, staging in staged:
        if server.data_dir.exists():
            aside = server.data_dir.with_name(f"{server.data_dir.name}.before-restore-{stamp}")
            server.data_dir.rename(aside)
            report[f"{server.name}_kept_at"] = str(aside)
        staging.rename(server.data_dir)
    return report


def _checked_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, once every archive it names is present and unaltered."""
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} is not a backup made by `registry backup` (no {MANIFEST})")
    manifest: dict[str, Any] = json.loads(path.read_text())
    for archive in manifest["archives"].values():
        file = source / archive["file"]
        if not file.is_file() or _sha256(file) != archive["sha256"]:
            raise BackupError(f"{file} is missing or altered since the backup (its SHA-256 differs)")
    missing = set(SERVER_NAMES) - manifest["archives"].keys()
    if missing:
        raise BackupError(f"{source} has no archive of {', '.join(sorted(missing))}")
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
