"""Sign a model directory, and check downloaded files against a version's verified manifest (the ``signing`` extra).

Signatures are OpenSSF model-signing's: a Sigstore bundle whose DSSE envelope carries an in-toto
statement over the model's manifest (each file's digest), made offline with an elliptic-curve
private key. The registry verifies one against the keys its team trusts and records the manifest
on the version (``provenance``); :func:`verify_model_files` re-hashes the files a pipeline
downloaded the way that manifest says they were hashed, so a tampered artifact is refused before
it serves. Only this module imports ``model_signing``, and only when called: importing it needs no
extra, and a call without the extra raises :class:`SigningUnavailable`, which says what to install.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from registry_contract.views import ModelVersionPublic

if TYPE_CHECKING:
    from model_signing.hashing import Config as HashingConfig

INSTALL_SIGNING = "pip install 'registry-client[signing]'"
MismatchKind = Literal["changed", "missing", "unexpected"]
HashingAlgorithm = Literal["sha256", "blake2", "blake3"]
# The manifest's hash_type (the digest's name) → the name model-signing's hashing configuration takes.
_HASHING_ALGORITHMS: dict[str, HashingAlgorithm] = {"sha256": "sha256", "blake2b": "blake2", "blake3": "blake3"}


class SigningUnavailable(ImportError):
    """model-signing is not installed; the message names the extra that brings it."""


class ProvenanceUnverified(Exception):
    """The version has no verified provenance to check files against.

    ``reason`` is ``absent`` (registered without a signature) or ``unverified`` (recorded, not verified).
    """

    def __init__(self, message: str, *, reason: Literal["absent", "unverified"]) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Mismatch:
    """One file (or shard) whose local bytes differ from the registered manifest.

    ``expected`` and ``actual`` are ``<algorithm>:<hex>``; ``None`` on the side that has no such file.
    """

    name: str
    kind: MismatchKind
    expected: str | None
    actual: str | None


@dataclass(frozen=True)
class VerificationResult:
    """How local files compare with a version's verified manifest; ``ok`` when every one matches."""

    mismatches: tuple[Mismatch, ...]
    checked: int  # entries of the registered manifest
    manifest_digest: str | None
    signer: Mapping[str, Any] | None

    @property
    def ok(self) -> bool:
        """Whether every registered file is there, unchanged, and nothing else is."""
        return not self.mismatches

    def names(self, kind: MismatchKind) -> list[str]:
        """The names of the files with mismatch ``kind`` (``changed``, ``missing`` or ``unexpected``)."""
        return [m.name for m in self.mismatches if m.kind == kind]


def _library() -> ModuleType:
    """The ``model_signing`` package, or :class:`SigningUnavailable` saying which extra to install."""
    try:
        import model_signing
        import model_signing.hashing
        import model_signing.signing
    except ImportError as exc:
        message = f"signing and verifying models needs the signing extra: {INSTALL_SIGNING} ({exc})"
        raise SigningUnavailable(message) from None
    return model_signing


def sign_model(
    model_dir: str | Path,
    private_key_path: str | Path,
    *,
    password: str | None = None,
    ignore_paths: Iterable[str | Path] = (),
) -> dict[str, Any]:
    """Sign the files of ``model_dir`` with an elliptic-curve private key; return the signature to register.

    The answer is the JSON document model-signing writes as its signature file; send it as the
    version's ``provenance.signature`` (``register_version(..., provenance={"signature": ...})``).

    Args:
        model_dir: the model's directory (or single file), as it will be shipped.
        private_key_path: a PEM elliptic-curve private key on P-256 or P-384 (the curves signing keys take).
        password: the key's password, when it is encrypted.
        ignore_paths: paths under ``model_dir`` left out of the manifest (``.git`` and its kin always are).

    Raises:
        SigningUnavailable: the ``signing`` extra is not installed.
        ValueError: the key is not a supported EC key, or the model holds a symlink or a special file.
        TypeError: the key is encrypted and no password was given.

    """
    model_signing = _library()
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=[str(p) for p in ignore_paths])
    # model-signing types the password as str but hands it to cryptography, which takes bytes.
    secret: Any = password.encode() if password is not None else None
    try:
        signer = model_signing.signing.Config().use_elliptic_key_signer(
            private_key=str(private_key_path), password=secret
        )
    except AttributeError:  # model-signing reads the key's curve before checking it has one (Ed25519, RSA)
        raise ValueError(f"{private_key_path} is not an elliptic-curve private key") from None
    config = signer.set_hashing_config(hashing)
    with tempfile.TemporaryDirectory(prefix="registry-sign-") as folder:
        written = Path(folder) / "model.sig"
        config.sign(str(model_dir), str(written))
        signature: dict[str, Any] = json.loads(written.read_text(encoding="utf-8"))
    return signature


def signed_manifest(signature: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest a signature states, unverified: ``{"serialization": {...}, "files": [...]}``.

    For a look at what was signed (``registry sign`` prints it); only the registry's verified
    ``provenance.manifest`` may be trusted.

    Raises:
        ValueError: ``signature`` is not a model-signing bundle.

    """
    try:
        payload = json.loads(base64.b64decode(signature["dsseEnvelope"]["payload"], validate=True))
        predicate = payload["predicate"]
        files = [
            {"name": str(r["name"]), "algorithm": str(r["algorithm"]), "digest": str(r["digest"])}
            for r in predicate["resources"]
        ]
        return {"serialization": dict(predicate["serialization"]), "files": files}
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"not a model-signing signature: {exc!r}") from None


def verify_model_files(provenance: Mapping[str, Any] | BaseModel, model_dir: str | Path) -> VerificationResult:
    """Re-hash ``model_dir`` as the version's verified manifest was hashed, and compare file by file.

    Args:
        provenance: the version (a ``ModelVersionPublic`` or its JSON) or its ``provenance`` alone.
        model_dir: the downloaded model: the directory (or file) that was signed.

    Returns:
        The changed, missing and unexpected files (``result.ok`` when there are none).

    Raises:
        ProvenanceUnverified: the version has no provenance, or it is not verified.
        SigningUnavailable: the ``signing`` extra is not installed.
        ValueError: the manifest names a hashing this library does not know, or the local model
            holds what the signed serialization refuses (a symlink, a special file).

    """
    record = _provenance_of(provenance)
    if record is None:
        raise ProvenanceUnverified("the version was registered without a signature", reason="absent")
    if record.get("verified") is not True:
        raise ProvenanceUnverified("the version's provenance is not verified", reason="unverified")
    manifest = record.get("manifest") or {}
    registered = {str(f["name"]): _digest(f["algorithm"], f["digest"]) for f in manifest.get("files", [])}
    found = local_digests(manifest.get("serialization") or {}, model_dir)
    mismatches = [Mismatch(name, "missing", digest, None) for name, digest in registered.items() if name not in found]
    mismatches += [
        Mismatch(name, "changed", registered[name], digest)
        for name, digest in found.items()
        if name in registered and registered[name] != digest
    ]
    mismatches += [
        Mismatch(name, "unexpected", None, digest) for name, digest in found.items() if name not in registered
    ]
    return VerificationResult(
        mismatches=tuple(sorted(mismatches, key=lambda m: (m.name, m.kind))),
        checked=len(registered),
        manifest_digest=record.get("manifest_digest"),
        signer=record.get("signer"),
    )


def local_digests(serialization: Mapping[str, Any], model_dir: str | Path) -> dict[str, str]:
    """Each file's (or shard's) ``<algorithm>:<hex>`` under ``model_dir``, hashed as ``serialization`` says.

    ``serialization`` is model-signing's description of how a manifest was made: ``method``
    (``files`` or ``shards``), ``hash_type``, ``allow_symlinks``, ``shard_size`` and ``ignore_paths``.
    """
    config = _hashing_config(serialization)
    hashed = config.hash(str(model_dir))
    return {d.identifier: _digest(d.digest.algorithm, d.digest.digest_hex) for d in hashed.resource_descriptors()}


def _hashing_config(serialization: Mapping[str, Any]) -> HashingConfig:
    """model-signing's hashing configuration that reproduces ``serialization``."""
    model_signing = _library()
    method, hash_type = serialization.get("method"), serialization.get("hash_type")
    algorithm = _HASHING_ALGORITHMS.get(str(hash_type))
    if algorithm is None:
        raise ValueError(f"the manifest's hash_type {hash_type!r} is none of {', '.join(_HASHING_ALGORITHMS)}")
    allow_symlinks = serialization.get("allow_symlinks") is True
    config: HashingConfig = model_signing.hashing.Config()
    if method == "files":
        config.use_file_serialization(hashing_algorithm=algorithm, allow_symlinks=allow_symlinks)
    elif method == "shards":
        shard_size = serialization.get("shard_size")
        if not isinstance(shard_size, int) or shard_size < 1:
            raise ValueError(f"the manifest's shard_size {shard_size!r} is not a positive integer")
        config.use_shard_serialization(
            hashing_algorithm=algorithm, shard_size=shard_size, allow_symlinks=allow_symlinks
        )
    else:
        raise ValueError(f"the manifest's serialization method {method!r} is neither files nor shards")
    # The recorded ignore_paths already hold the .git paths the signer left out: nothing more, nothing less.
    ignored = [str(p) for p in serialization.get("ignore_paths") or []]
    return config.set_ignored_paths(paths=ignored, ignore_git_paths=False).set_allow_symlinks(allow_symlinks)


def _provenance_of(value: Mapping[str, Any] | BaseModel) -> Mapping[str, Any] | None:
    """The provenance record of a version or of a provenance (``None``: registered without one)."""
    if isinstance(value, ModelVersionPublic):
        if value.provenance is None:
            return None
        value = value.provenance
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if "provenance" in value and "verified" not in value:  # a version's JSON
        provenance: Mapping[str, Any] | None = value["provenance"]
        return provenance
    return value


def _digest(algorithm: object, hex_digest: object) -> str:
    return f"{algorithm}:{str(hex_digest).lower()}"
