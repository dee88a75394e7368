"""Routes for the other services only: API keys' introspection and verifiers (never behind the gateway).

Registration owns ``api_keys``; the other services authenticate keys here (``RemoteKeyStore`` in
:mod:`shared.chassis.keystore_remote`) and fetch a key's verifier to check signed Kafka records,
presenting the services' credential (``INTERNAL_API_TOKEN``), and cache the answers. Each answer is
read from MongoDB (never from this replica's key cache), so a service whose cache a revocation just
emptied never reads the key back from a replica that has not yet seen the revocation. The gateway
routes nothing under ``/internal``, and the routes are left out of the public ``/openapi.json``.
"""

import base64
import hmac
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from registration.federation import LocalFederation
from registry_contract.auth import parse_api_key, secret_matches
from shared.chassis.federation import TokenAuthenticateRequest, TokenPrincipalRecord, TokenRefusal, TokenRefused
from shared.chassis.http_app import Service
from shared.chassis.http_params import IdPath
from shared.chassis.keystore import usable
from shared.chassis.keystore_remote import AuthenticateRequest, KeyPrincipalRecord
from shared.chassis.mongo import API_KEYS
from shared.chassis.problems import Problem, documented
from shared.chassis.verifiers import VerifierBox, internal_token


class KeyVerifier(BaseModel):
    """What checks a key's signatures; it cannot make an API key, nor authenticate over HTTP."""

    key_id: str
    verifier: str = Field(description="base64 of the key's signing key (HMAC-SHA256 key of ce_signature)")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def _box(request: Request) -> VerifierBox:
    box: VerifierBox = request.app.state.verifier_box
    return box


async def _from_a_service(
    request: Request, token: Annotated[str | None, Header(alias="X-Registry-Service-Token")] = None
) -> None:
    expected = internal_token(_service(request).settings)
    if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem("unauthenticated", "this route is for the registry's services")


router = APIRouter(
    prefix="/internal/v1",
    tags=["internal"],
    dependencies=[Depends(_from_a_service)],
    responses=documented("unauthenticated"),
    include_in_schema=False,  # not the public API: documented in docs/operations.md
)


@router.get("/keys/{key_id}/verifier", responses=documented("not_found"))
async def key_verifier(key_id: IdPath, request: Request, box: Annotated[VerifierBox, Depends(_box)]) -> KeyVerifier:
    """The verifier of a usable key; 404 alike for unknown, revoked, expired and keys made before signing."""
    record = await _service(request).db[API_KEYS].find_one({"_id": key_id, "revoked": {"$ne": True}})
    expires_at = record.get("expires_at") if record else None
    if expires_at is not None and expires_at.replace(tzinfo=expires_at.tzinfo or UTC) <= datetime.now(UTC):
        record = None  # an expired key signs nothing (the other services judge its record too)
    verifier = box.verifier_of(record) if record else None
    if verifier is None:
        raise Problem("not_found", f"no key {key_id!r} that can sign")
    return KeyVerifier(key_id=key_id, verifier=base64.b64encode(verifier).decode())


@router.post("/keys/authenticate", responses=documented("not_found", "invalid"))
async def authenticate_key(body: AuthenticateRequest, request: Request) -> KeyPrincipalRecord:
    """The principal record of a presented key; 404 alike for malformed, unknown, revoked, expired and wrong secrets."""
    parsed = parse_api_key(body.token)
    record = await _service(request).db[API_KEYS].find_one({"_id": parsed[0]}) if parsed else None
    record = usable(record)
    if parsed is None or record is None or not secret_matches(parsed[1], record["secret_hash"]):
        raise Problem("not_found", "no usable key for this token")
    return KeyPrincipalRecord.of(record)


@router.get("/keys/{key_id}", responses=documented("not_found"))
async def key_record(key_id: IdPath, request: Request) -> KeyPrincipalRecord:
    """The principal record of a usable key by id; 404 alike for unknown, revoked and expired keys."""
    record = usable(await _service(request).db[API_KEYS].find_one({"_id": key_id}))
    if record is not None:
        return KeyPrincipalRecord.of(record)
    # A service acting for a token's caller names the trust rule that admitted it.
    granted = await _federation(request).principal_of(key_id)
    if granted is None:
        raise Problem("not_found", f"no usable key {key_id!r}")
    return KeyPrincipalRecord(
        key_id=key_id,
        team=granted.team,
        scopes=sorted(granted.scopes),
        platform_admin=granted.is_platform_admin,
        can_sign=False,
    )


@router.post("/tokens/authenticate", response_model=TokenPrincipalRecord, responses=documented("not_found", "invalid"))
async def authenticate_token(body: TokenAuthenticateRequest, request: Request) -> TokenPrincipalRecord | JSONResponse:
    """The principal an OpenID Connect token acts as; 404 with the reason when it admits no one."""
    try:
        admission = await _federation(request).admit(body.token, team=body.team, fresh=True)
    except TokenRefused as refused:
        return JSONResponse(TokenRefusal(reason=refused.reason).model_dump(), status_code=404)
    return TokenPrincipalRecord.of(admission.principal, admission.expires_at)


def _federation(request: Request) -> LocalFederation:
    federation: LocalFederation = request.app.state.federation
    return federation
