"""The check of a signature with model-signing: imported by :func:`registration.provenance.verify` on first use.

:mod:`registration.provenance` says what is verified and why; this module holds what needs
model-signing and Sigstore's models, which registration does not load until a signature arrives.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from model_signing._signing import sign_ec_key, sign_sigstore_pb, signing
from sigstore_models.bundle import v1 as bundle_pb

from registration.provenance import SignatureRefused, TrustedKey
from registry_contract.documents import Document
from registry_contract.jsonbounds import check_document

_MAX_SUBJECT = 500  # a subject name is a directory's name: more is noise, not kept


class _Verifier(sign_ec_key.Verifier):
    """model-signing's elliptic-key verifier over a key in memory (its own reads a key file).

    It checks the envelope once, with model-signing's own PAE encoding and the key's hash: the
    library's fallback (a second check with the encoding of its 0.x releases, for bundles without a
    key hint, after printing a warning on stdout) is never taken, since a bundle without a hint is
    refused before any check.
    """

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._public_key = self._key = public_key

    def signed_content(self, signature: sign_sigstore_pb.Signature) -> tuple[str, bytes]:
        """The envelope's payload type and payload, once the key verifies its signature."""
        return self._verify_signed_content(signature)

    def _verify_bundle(self, bundle: bundle_pb.Bundle) -> tuple[str, bytes]:
        envelope = bundle.dsse_envelope
        if envelope is None:  # refused before (``_bundle``); said again for the type checker
            raise ValueError("no DSSE envelope")
        algorithm = ec.ECDSA(sign_ec_key.get_ec_key_hash(self._key))
        self._key.verify(envelope.signatures[0].sig, sign_sigstore_pb.pae(envelope.payload), algorithm)
        return envelope.payload_type, envelope.payload


def check(signature: dict[str, Any], keys: Sequence[TrustedKey], *, now: datetime) -> Document:
    """The provenance to record for ``signature``, or :class:`SignatureRefused` saying why it is refused."""
    bundle = _bundle(signature)
    if not keys:
        raise SignatureRefused(
            "the team trusts no signing key: a team admin adds one (POST /v1/teams/{team}/signing-keys) "
            "before a signed version is registered"
        )
    hint = _hint(bundle)
    key = next((key for key in keys if key.info.hint == hint), None)
    if key is None:
        raise SignatureRefused(
            f"the signature names a key (hint {hint[:16]}…) that is not one of the team's {len(keys)} signing keys"
        )
    try:
        payload_type, payload = _Verifier(key.public_key).signed_content(sign_sigstore_pb.Signature(bundle))
    except Exception:  # whatever the library raises on a hostile bundle, the signature is not verified
        raise SignatureRefused(
            f"the signature does not verify with the key it names ({key.name}, {key.key_id}): "
            "the statement or the signature was altered"
        ) from None
    return _recorded(key, payload_type, payload, now=now)


def _hint(bundle: bundle_pb.Bundle) -> str:
    """The hint naming the bundle's key: a bundle without one is refused (one key, one check)."""
    material = bundle.verification_material.public_key
    hint = material.hint if material is not None else None
    if not isinstance(hint, str) or not hint:
        raise SignatureRefused(
            "the signature bundle names no public key (verificationMaterial.publicKey.hint): only bundles "
            "of model-signing's key method (1.0 or later) are accepted, not certificates or certificate chains"
        )
    return hint


def _bundle(signature: dict[str, Any]) -> bundle_pb.Bundle:
    """The Sigstore bundle of a signature file's JSON, read as model-signing reads its files."""
    parsed = copy.deepcopy(signature)
    try:
        material = parsed["verificationMaterial"]
        material.setdefault("tlogEntries", [])
        if isinstance(material.get("publicKey"), dict):
            material["publicKey"].setdefault("hint", None)
            for legacy in ("rawBytes", "keyDetails"):
                material["publicKey"].pop(legacy, None)
        bundle = bundle_pb.Bundle.from_dict(parsed)
    except Exception as exc:  # the library raises what its parsers raise: every one is a malformed bundle
        raise SignatureRefused(f"malformed signature bundle: {_first_line(exc)}") from None
    if bundle.media_type != sign_sigstore_pb._BUNDLE_MEDIA_TYPE:
        raise SignatureRefused(
            f"malformed signature bundle: media type {bundle.media_type!r}, expected "
            f"{sign_sigstore_pb._BUNDLE_MEDIA_TYPE!r} (model-signing's key signer writes it)"
        )
    envelope = bundle.dsse_envelope
    if envelope is None or not envelope.signatures:
        raise SignatureRefused(
            "malformed signature bundle: no DSSE envelope with a signature (a key signer's bundle has one)"
        )
    return bundle


def _recorded(key: TrustedKey, payload_type: str, payload: bytes, *, now: datetime) -> Document:
    """The provenance of a verified payload: the statement must be a model-signing manifest."""
    if payload_type != signing._IN_TOTO_JSON_PAYLOAD_TYPE:
        raise SignatureRefused(f"the signed payload is {payload_type!r}, not an in-toto statement")
    try:
        statement = json.loads(payload)
        if statement.get("_type") != signing._IN_TOTO_STATEMENT_TYPE:
            raise ValueError(f"statement type {statement.get('_type')!r}, expected {signing._IN_TOTO_STATEMENT_TYPE}")
        if statement.get("predicateType") != signing._PREDICATE_TYPE:
            raise ValueError(f"predicate type {statement.get('predicateType')!r}, expected {signing._PREDICATE_TYPE}")
        signing.dsse_payload_to_manifest(statement)  # the subject's digest must cover the resources listed
        subject = str(statement["subject"][0]["name"])[:_MAX_SUBJECT]
        predicate = statement["predicate"]
        serialization_args = dict(predicate["serialization"])
        check_document(serialization_args, max_depth=4, max_nodes=200)  # stored as it is: storable
        files = [
            {"name": str(item["name"]), "algorithm": str(item["algorithm"]), "digest": str(item["digest"])}
            for item in predicate["resources"]
        ]
    except SignatureRefused:
        raise
    except Exception as exc:
        raise SignatureRefused(f"the signed statement is not a model-signing manifest: {_first_line(exc)}") from None
    return {
        "verified": True,
        "signer": {"key_id": key.key_id, "name": key.name, "fingerprint": key.info.fingerprint},
        "algorithm": key.info.algorithm,
        "manifest": {"serialization": serialization_args, "files": files},
        "manifest_digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
        "subject": subject,
        "verified_at": now,
    }


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
