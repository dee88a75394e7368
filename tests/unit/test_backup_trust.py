"""``registry restore`` trusts a backup only as far as its signed manifest and confined paths go.

The manifest's sums are keyed, or whoever can write the backup folder would choose what a restore
brings back (a planted admin key, say); a manifest ``file`` may be neither absolute nor hold ``..``.
Each refusal here happens before anything under the data directory moves.
"""

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from registry_cli import backup
from registry_cli.backup import FORMAT, MANIFEST, BackupError, restore, sign_manifest
from registry_cli.config import StackSettings
from registry_cli.secrets import load_or_create
from tests.throwaway import throwaway_settings

pytestmark = pytest.mark.unit


def archive_bytes(members: list[tarfile.TarInfo] | None = None) -> bytes:
    """A small tar.gz shaped like a SecantusDB archive, with ``members`` added."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"WiredTiger metadata"
        info = tarfile.TarInfo("WiredTiger")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for member in members or []:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def manifest_for(source: Path, files: dict[str, str]) -> dict[str, Any]:
    archives = {
        server: {"file": file, "bytes": 1, "sha256": hashlib.sha256((source / file).read_bytes()).hexdigest()}
        for server, file in files.items()
    }
    return {"format": FORMAT, "started_at": "2026-12-05T10:00:00+00:00", "archives": archives}


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return throwaway_settings(tmp_path / "data")


def key(settings: StackSettings) -> bytes:
    return bytes.fromhex(load_or_create(settings.data_dir).backup_key)


def make_backup(settings: StackSettings, source: Path, audit_archive: bytes | None = None) -> dict[str, Any]:
    """A backup folder signed with the stack's key, as `registry backup` writes it."""
    source.mkdir()
    (source / "mongo.tar.gz").write_bytes(archive_bytes())
    (source / "audit-mongo.tar.gz").write_bytes(audit_archive or archive_bytes())
    manifest = sign_manifest(
        manifest_for(source, {"mongo": "mongo.tar.gz", "audit-mongo": "audit-mongo.tar.gz"}), key(settings)
    )
    (source / MANIFEST).write_text(json.dumps(manifest))
    return manifest


def nothing_moved(settings: StackSettings) -> bool:
    data = settings.data_dir
    return not list(data.glob("*.restoring-*")) and not list(data.glob("*.before-restore-*"))


def test_a_signed_backup_is_restored(settings: StackSettings, tmp_path: Path) -> None:
    make_backup(settings, tmp_path / "backup")
    restore(settings, tmp_path / "backup")
    assert (settings.mongo_data_dir / "WiredTiger").is_file()


def test_an_unsigned_manifest_is_refused(settings: StackSettings, tmp_path: Path) -> None:
    source = tmp_path / "backup"
    manifest = make_backup(settings, source)
    del manifest["mac"]
    (source / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="is not signed"):
        restore(settings, source)
    assert nothing_moved(settings) and not settings.mongo_data_dir.exists()


def test_a_planted_archive_with_recomputed_sums_is_refused(settings: StackSettings, tmp_path: Path) -> None:
    # Whoever can write the folder swaps an archive and fixes its SHA-256: the MAC no longer holds.
    source = tmp_path / "backup"
    manifest = make_backup(settings, source)
    planted = archive_bytes([tarfile.TarInfo("planted")])
    (source / "mongo.tar.gz").write_bytes(planted)
    manifest["archives"]["mongo"]["sha256"] = hashlib.sha256(planted).hexdigest()
    (source / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="is altered, or signed with another stack's backup key"):
        restore(settings, source)
    assert nothing_moved(settings) and not settings.mongo_data_dir.exists()


def test_a_backup_signed_with_another_stacks_key_is_refused(settings: StackSettings, tmp_path: Path) -> None:
    other = throwaway_settings(tmp_path / "other")
    make_backup(other, tmp_path / "backup")
    with pytest.raises(BackupError, match=r"copy the secrets\.json"):
        restore(settings, tmp_path / "backup")


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.tar.gz", "sub/mongo.tar.gz", "..", ""])
def test_a_manifest_naming_a_path_is_refused_even_when_signed(
    settings: StackSettings, tmp_path: Path, name: str
) -> None:
    source = tmp_path / "backup"
    manifest = make_backup(settings, source)
    manifest["archives"]["mongo"]["file"] = name
    (source / MANIFEST).write_text(json.dumps(sign_manifest(manifest, key(settings))))
    with pytest.raises(BackupError, match="only a plain file name"):
        restore(settings, source)


def test_an_archive_that_is_a_symlink_is_refused(settings: StackSettings, tmp_path: Path) -> None:
    source = tmp_path / "backup"
    make_backup(settings, source)
    elsewhere = tmp_path / "elsewhere.tar.gz"
    (source / "mongo.tar.gz").rename(elsewhere)
    (source / "mongo.tar.gz").symlink_to(elsewhere)
    with pytest.raises(BackupError, match="is a symbolic link"):
        restore(settings, source)


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def regular(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (regular("../escaped"), "is refused"),
        (regular("/tmp/absolute"), "is refused"),
        (link("inside-link", "WiredTiger"), "not a plain file or directory"),  # 'data' alone lets this one in
        (link("escaping-link", "/etc/passwd"), "not a plain file or directory"),
        (link("hard", "WiredTiger", tarfile.LNKTYPE), "not a plain file or directory"),
    ],
)
def test_an_archive_member_outside_plain_files_is_refused_before_anything_moves(
    settings: StackSettings, tmp_path: Path, member: tarfile.TarInfo, why: str
) -> None:
    make_backup(settings, tmp_path / "backup", audit_archive=archive_bytes([member]))
    with pytest.raises(BackupError, match=why):
        restore(settings, tmp_path / "backup")
    assert nothing_moved(settings) and not settings.mongo_data_dir.exists()
    assert not (tmp_path / "escaped").exists()


def test_an_archive_swapped_after_its_check_is_not_what_is_restored(
    settings: StackSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Restore extracts the very bytes it hashed: opening the archive again by its path would let
    # whoever can write the backup folder swap the file in between.
    source = tmp_path / "backup"
    make_backup(settings, source)
    planted = tarfile.TarInfo("planted-admin-key")
    planted.size = 3
    hashed = backup._sha256

    def hash_then_swap(path: Path) -> str:
        digest = hashed(path)
        (source / path.name).write_bytes(archive_bytes([planted]))
        return digest

    monkeypatch.setattr(backup, "_sha256", hash_then_swap)
    restore(settings, source)
    assert (settings.mongo_data_dir / "WiredTiger").is_file()
    assert not (settings.mongo_data_dir / "planted-admin-key").exists()
    assert not (settings.audit_mongo_data_dir / "planted-admin-key").exists()
    assert not list(settings.data_dir.glob(".restore-*"))  # the private copies are gone
