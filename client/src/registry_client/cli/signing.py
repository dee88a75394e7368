"""``registry sign``, ``registry verify`` and ``registry signing-keys …``: signed provenance from the command line.

Signing and verifying need the ``signing`` extra (``pip install 'registry-client[signing]'``);
the signing-key commands call registration's API and need nothing more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from registry_client.cli.output import ApiKey, AsJson, Consistency, ExitCode, fields, print_json, registry, table
from registry_client.cli.terminal import visible
from registry_client.signing import (
    ProvenanceUnverified,
    SigningUnavailable,
    VerificationResult,
    sign_model,
    signed_manifest,
    verify_model_files,
)

signing_keys_app = typer.Typer(
    help="Add, list and remove the public keys whose model signatures a team trusts (a team:admin or"
    " platform:admin key): a version registered with a signature none of them verifies is refused bad_signature.",
    no_args_is_help=True,
)
Team = Annotated[str, typer.Argument(help="The team that trusts the key")]
ModelPath = Annotated[
    Path, typer.Argument(help="The model: its directory (or single file)", exists=True, resolve_path=True)
]


def fail(message: str, code: ExitCode) -> NoReturn:
    """End the command with one line on stderr and ``code``."""
    typer.echo(visible(f"error: {message}", lines=False), err=True)
    raise typer.Exit(code)


def sign(
    path: ModelPath,
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            help="The elliptic-curve private key (PEM; P-256 or P-384, as the team's signing keys)",
            exists=True,
            dir_okay=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the signature here (default: stdout); left out of the manifest",
            dir_okay=False,
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(help="Repeatable: a path under PATH to leave out of the manifest (.git and its kin always are)"),
    ] = None,
    key_password: Annotated[
        str | None,
        typer.Option(envvar="REGISTRY_SIGNING_KEY_PASSWORD", show_envvar=True, help="The key's password, if any"),
    ] = None,
) -> None:
    """Sign the files of PATH with an EC private key (OpenSSF model signing, offline): the signature as JSON.

    Register it with the version (`provenance.signature`; `registry produce register --signature
    FILE`, or the client's `register_version(..., provenance={"signature": ...})`): registration
    verifies it against the team's signing keys. Needs the signing extra:
    pip install 'registry-client[signing]'.
    """
    ignored = list(ignore or [])
    if output is not None:
        written = output.resolve()
        if written.is_relative_to(path) and written != path:
            ignored.append(str(written.relative_to(path)))  # a signature inside the model is no part of it
    try:
        signature = sign_model(path, key, password=key_password, ignore_paths=ignored)
    except SigningUnavailable as exc:
        fail(str(exc), ExitCode.USAGE)
    except (ValueError, TypeError) as exc:  # not an EC key, a wrong or missing password, a symlink in the model
        fail(f"cannot sign {path}: {exc}", ExitCode.USAGE)
    except OSError as exc:
        fail(f"cannot sign {path}: {exc}", ExitCode.ERROR)
    text = json.dumps(signature, indent=2)
    if output is None:
        typer.echo(text)
    else:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write the signature: {exc}", ExitCode.ERROR)
    files = len(signed_manifest(signature)["files"])
    typer.echo(f"signed {files} files of {path}" + (f"; signature in {output}" if output else ""), err=True)


def verify(
    team: Annotated[str, typer.Argument(help="The model's team")],
    name: Annotated[str, typer.Argument(help="The model's name")],
    version: Annotated[str, typer.Argument(help="The version (or latest, or @alias)")],
    path: ModelPath,
    as_json: AsJson = False,
    consistency: Consistency = None,
    api_key: ApiKey = None,
) -> None:
    """Re-hash the files at PATH and compare them with the version's verified manifest; exit 0 only if all match.

    The files are hashed as the signed manifest says (algorithm, files or shards, ignored paths).
    Prints the files that changed, are missing or are unexpected. Exit codes: 0 every file matches,
    5 tampered (a file differs, is missing or is extra), 6 the version has no verified provenance
    (registered without a signature), 3 no such version, 2 usage (or the signing extra missing:
    pip install 'registry-client[signing]'), 1 other errors.
    """
    with registry(api_key, consistency) as client:
        registered = client.get_version(team, name, version)
    label = f"{registered.team}/{registered.name} {registered.version}"
    try:
        result = verify_model_files(registered, path)
    except SigningUnavailable as exc:
        fail(str(exc), ExitCode.USAGE)
    except ProvenanceUnverified as exc:
        fail(f"{label}: {exc}; nothing to verify the files against", ExitCode.UNVERIFIED)
    except ValueError as exc:  # a symlink or special file the signed serialization refuses, an unknown hashing
        fail(f"cannot hash {path}: {exc}", ExitCode.ERROR)
    except OSError as exc:  # a file unreadable, or gone while hashing
        fail(f"cannot read the files of {path}: {exc}", ExitCode.ERROR)
    if as_json:
        typer.echo(json.dumps(verdict(result), indent=2))
    elif result.ok:
        signer = result.signer or {}
        typer.echo(
            visible(
                f"{label}: all {result.checked} files match the manifest signed by {signer.get('name')}"
                f" ({signer.get('fingerprint')}), {result.manifest_digest}",
                lines=False,
            )
        )
    else:
        rows = [(m.name, m.kind, m.expected, m.actual) for m in result.mismatches]
        title = f"{label}: {len(result.mismatches)} mismatches against {result.checked} signed files"
        table(title, ["file", "problem", "registered digest", "local digest"], rows)
    if not result.ok:
        raise typer.Exit(ExitCode.TAMPERED)


def verdict(result: VerificationResult) -> dict[str, Any]:
    """A verification as JSON: ``ok``, what was checked, and each mismatch."""
    return {
        "ok": result.ok,
        "checked": result.checked,
        "manifest_digest": result.manifest_digest,
        "signer": dict(result.signer) if result.signer else None,
        "mismatches": [
            {"name": m.name, "problem": m.kind, "expected": m.expected, "actual": m.actual} for m in result.mismatches
        ],
    }


def with_signature(kind: str, data: Any, signature: Path) -> dict[str, Any]:
    """``registry produce register --signature FILE``: the command's data with the file as ``provenance.signature``."""
    if kind != "register":
        raise typer.BadParameter(f"goes with register only, not {kind}", param_hint="--signature")
    if not isinstance(data, dict):
        raise typer.BadParameter("the data must be a JSON object to carry a signature", param_hint="--signature")
    try:
        bundle = json.loads(signature.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{signature} is not JSON: {exc}", param_hint="--signature") from None
    return {**data, "provenance": {"signature": bundle}}


@signing_keys_app.command("add")
def add(
    team: Team,
    name: Annotated[str, typer.Option(help="A name for the key, e.g. the pipeline holding its private half")],
    public_key: Annotated[
        Path,
        typer.Option(
            help="The public key, PEM (-----BEGIN PUBLIC KEY-----; P-256 or P-384)", exists=True, dir_okay=False
        ),
    ],
    description: Annotated[str | None, typer.Option(help="What the key is for")] = None,
    as_json: AsJson = False,
    api_key: ApiKey = None,
) -> None:
    """Trust signatures by this public key on TEAM's versions; the audit log records it."""
    try:
        pem = public_key.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(
            f"{public_key} is not a PEM text file (a DER or other binary key? convert it: "
            "openssl pkey -pubin -inform DER -in KEY -out KEY.pem)",
            param_hint="--public-key",
        ) from None
    except OSError as exc:
        fail(f"cannot read {public_key}: {exc}", ExitCode.ERROR)
    with registry(api_key) as client:
        key = client.add_signing_key(team, name, pem, description=description)
    if as_json:
        print_json(key)
        return
    fields(
        f"signing key {key.key_id}",
        {
            "team": key.team,
            "name": key.name,
            "algorithm": key.algorithm,
            "fingerprint": key.fingerprint,
            "description": key.description,
            "created": key.created_at,
            "created by": key.created_by,
        },
    )


@signing_keys_app.command("list")
def list_keys(team: Team, as_json: AsJson = False, api_key: ApiKey = None) -> None:
    """A team's signing keys, oldest first."""
    with registry(api_key) as client:
        keys = client.list_signing_keys(team).items
    if as_json:
        print_json(keys)
        return
    rows = [(k.key_id, k.name, k.algorithm, k.fingerprint, k.created_at) for k in keys]
    table(f"{team} signing keys", ["id", "name", "algorithm", "fingerprint", "created"], rows)


@signing_keys_app.command("remove")
def remove(
    team: Team,
    key_id: Annotated[str, typer.Argument(help="The key's id, as `registry signing-keys list` shows it")],
    api_key: ApiKey = None,
) -> None:
    """Stop trusting a key: registrations it signed are refused from now on; versions it verified keep their record."""
    with registry(api_key) as client:
        client.remove_signing_key(team, key_id)
    typer.echo(f"removed {key_id}")
