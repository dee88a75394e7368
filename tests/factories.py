"""Builders of commands and raw CloudEvents shared by the tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry_contract import messages
from registry_contract.auth import Principal, generate_api_key
from registry_contract.envelope import CloudEvent
from registry_contract.record_signing import signature_headers

# A platform admin acts for every team; tests of authorization build narrower principals.
ADMIN_KEY = generate_api_key()
PRODUCER = Principal(key_id="test0001", team="platform", scopes=frozenset({"platform:admin"}))


def register_data(team: str, name: str, version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {
        "team": team,
        "name": name,
        "version": version,
        "framework": "xgboost",
        "artifact_uri": f"s3://ml-models/{team}/{name}/{version}/model.tar.gz",
        **fields,
    }


def command_event(
    ce_type: str, data: dict[str, Any], *, event_id: str | None = None, token: str | None = None, **attrs: Any
) -> CloudEvent:
    """A command or report; with ``token``, signed with that key when encoded (never sent itself)."""
    return CloudEvent(
        id=event_id or uuid.uuid4().hex, source="/tests", type=ce_type, data=data, sign_with=token, **attrs
    )


def bearer_event(ce_type: str, data: dict[str, Any], *, token: str, **attrs: Any) -> CloudEvent:
    """A command or report carrying its key as ``authorization: Bearer`` (the form refused by default)."""
    return CloudEvent(
        id=uuid.uuid4().hex, source="/tests", type=ce_type, data=data, authorization=f"Bearer {token}", **attrs
    )


def register_event(
    team: str,
    name: str,
    version: str = "1.0.0",
    *,
    token: str | None = None,
    correlation_id: str | None = None,
    **fields: Any,
) -> CloudEvent:
    attrs = {"correlation_id": correlation_id} if correlation_id else {}
    data = register_data(team, name, version, **fields)
    return command_event(messages.REGISTER_MODEL_VERSION, data, token=token, **attrs)


def binary_record(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    return event.to_kafka()


def structured_record(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    body = event.to_structured()
    value = json.dumps(body).encode()
    headers = [("content-type", b"application/cloudevents+json")]
    if event.authorization:  # the credential travels as a Kafka header in both modes
        headers.append(("authorization", event.authorization.encode()))
    if event.sign_with:  # so does the signature, over the whole value
        signed: dict[str, str] = {n: body[n] for n in ("id", "source", "type", "time", "subject") if n in body}
        headers.extend(signature_headers(event.sign_with, attributes=signed, value=value))
    return value, headers


async def store_admin_key(db: Any, *, signing_key: str | None = None) -> str:
    """Put :data:`ADMIN_KEY` (a platform admin) into ``db``'s api_keys; return its token.

    With ``signing_key`` (the services' ``EVENT_SIGNING_KEY``), the key can sign Kafka records for
    services that derive their verifier sealing key from it.
    """
    from shared.chassis.keystore import issue_key
    from shared.chassis.settings import CommonSettings
    from shared.chassis.verifiers import VerifierBox

    settings = CommonSettings(event_signing_key=signing_key)
    verifiers = VerifierBox.of(settings, sealing_keys=None) if signing_key else None
    await issue_key(
        db["api_keys"],
        team="platform",
        name="tests",
        scopes=["platform:admin"],
        created_by="tests",
        given=ADMIN_KEY,
        verifiers=verifiers,
    )
    return ADMIN_KEY.token


def signing_key_pem(curve: ec.EllipticCurve | None = None) -> str:
    """A fresh elliptic-curve public key (P-256 unless ``curve``), PEM: a team's signing key."""
    public = ec.generate_private_key(curve or ec.SECP256R1()).public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
