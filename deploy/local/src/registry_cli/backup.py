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

A backup holds every team's data and its API keys' verifiers, and a restore brings back whatever
it holds: the folder is its owner's alone (0700, files 0600), and the manifest, which names each
archive and its SHA-256, carries an HMAC-SHA256 under the stack's backup key (``backup_key`` in
``<data dir>/secrets.json``, never in the backup). Restore refuses a manifest that is unsigned or
altered, an archive named by anything but a plain file name (no path, no ``..``, no symlink), and
an archive member that is not a plain file or directory inside its destination.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from secantus.oplog_replay import restore_archive_to_timestamp
from secantus.storage import extract_backup_archive

from registry_cli.config import StackSettings
from registry_cli.files import write_private
from registry_cli.processes import PortInUse, check_port_free
from registry_cli.secrets import load_or_create

MANIFEST = "manifest.json"
FORMAT = "registry-embedded-backup/2"  # /2: signed (``mac``); /1 manifests were not and are refused
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
        await asyncio.to_thread(target.chmod, 0o600)  # the server wrote it under its own umask
        digest = await asyncio.to_thread(_sha256, target)
        archives[server.name] = {"file": target.name, "bytes": int(result["sizeBytes"]), "sha256": digest}
    manifest = {
        "format": FORMAT,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "archives": archives,
    }
    signed = sign_manifest(manifest, _backup_key(settings))
    await asyncio.to_thread(write_private, into / MANIFEST, json.dumps(signed, indent=2).encode())
    return signed


def _new_directory(path: Path) -> None:
    if path.exists():
        raise BackupError(f"{path} exists already: back up into a new directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700)
    path.chmod(0o700)  # whatever the umask: nobody else may list or read a backup


def _backup_key(settings: StackSettings) -> bytes:
    return bytes.fromhex(load_or_create(settings.data_dir).backup_key)


def _mac(manifest: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 of the manifest's canonical JSON, its ``mac`` left out."""
    body = {name: value for name, value in manifest.items() if name != "mac"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def sign_manifest(manifest: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The manifest with its ``mac`` under ``key`` (the stack's backup key)."""
    return {**manifest, "mac": _mac(manifest, key)}


def restore(settings: StackSettings, source: Path, *, to_time: datetime | None = None) -> dict[str, Any]:
    """Put the backup in ``source`` in place of the stack's data (stopped); to ``to_time`` if given.

    Each server's current data directory is kept beside it as ``<name>.before-restore-<time>``.
    """
    # The archives are copied into a private folder and checked there: what is checked is what is
    # extracted, even if someone swaps a file in the backup folder between the two.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=".restore-", dir=settings.data_dir))
    try:
        return _restore_checked(settings, source, private, to_time)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _restore_checked(settings: StackSettings, source: Path, private: Path, to_time: datetime | None) -> dict[str, Any]:
    manifest = _checked_manifest(settings, source, private)
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
            archive = private / manifest["archives"][server.name]["file"]
            staging = server.data_dir.with_name(f"{server.data_dir.name}.restoring-{stamp}")
            _check_members(archive, staging)
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


def _checked_manifest(settings: StackSettings, source: Path, private: Path) -> dict[str, Any]:
    """The backup's manifest, once its MAC, its archives' names and their SHA-256 sums hold.

    Each archive is copied into ``private`` first and its copy is what is hashed (and later extracted).
    """
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{source} is not a backup made by `registry backup` (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{path} is not JSON: it was not written by `registry backup`") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("mac"), str):
        raise BackupError(
            f"{path} is not signed: restore only trusts a backup whose manifest carries the MAC of "
            f"this stack's backup key (made by `registry backup` since format {FORMAT})"
        )
    if not hmac.compare_digest(manifest["mac"], _mac(manifest, _backup_key(settings))):
        raise BackupError(
            f"{path} is altered, or signed with another stack's backup key: its MAC does not match "
            f"the backup_key in {settings.data_dir / 'secrets.json'} (restoring on another machine: "
            "copy the secrets.json of the stack that made the backup first)"
        )
    archives = manifest.get("archives")
    if manifest.get("format") != FORMAT or not isinstance(archives, dict):
        raise BackupError(f"{path} has format {manifest.get('format')!r}: this restore reads {FORMAT}")
    if archives.keys() != set(SERVER_NAMES):
        raise BackupError(f"{source} must hold exactly the archives of {', '.join(SERVER_NAMES)}")
    for archive in archives.values():
        file = _archive_path(source, archive.get("file"))
        if not file.is_file():
            raise BackupError(f"{file} is missing since the backup")
        copy = private / file.name
        shutil.copyfile(file, copy, follow_symlinks=False)
        if _sha256(copy) != archive.get("sha256"):
            raise BackupError(f"{file} is altered since the backup (its SHA-256 differs)")
    return manifest


def _archive_path(source: Path, name: object) -> Path:
    """Where the archive ``name`` is: a plain file name in ``source``, never a path or a link."""
    if not isinstance(name, str) or name in ("", ".", "..") or name != os.path.basename(name) or "\\" in name:
        raise BackupError(f"the manifest names the archive {name!r}: only a plain file name in the backup is allowed")
    path = source / name
    if path.is_symlink():
        raise BackupError(f"{path} is a symbolic link: an archive must be a file in the backup itself")
    return path


def _check_members(archive: Path, destination: Path) -> None:
    """Refuse an archive with a member that is not a plain file or directory inside ``destination``."""
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            if not (member.isfile() or member.isdir()):
                raise BackupError(f"{archive}: member {member.name!r} is not a plain file or directory")
            if member.name.startswith(("/", "\\")):
                raise BackupError(f"{archive}: member {member.name!r} is refused (an absolute path)")
            try:
                tarfile.data_filter(member, str(destination))
            except tarfile.FilterError as exc:
                raise BackupError(f"{archive}: member {member.name!r} is refused ({exc})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
