"""Signing-key management for a team (``team:admin``): add, list, delete.

A key is an elliptic-curve public key (PEM, P-256 or P-384); a version registered with a
provenance signature is verified against the team's keys. Each change is an event the audit log
keeps for ever.
"""

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from registration.config import RegistrationSettings, settings_of
from registration.provenance import read_public_key
from registration.signing_keys import AlreadyTrusted, QuotaReached, SigningKeys, public
from registry_contract.auth import Principal
from registry_contract.signing_keys import SigningKeyCreate, SigningKeyList, SigningKeyPublic
from shared.chassis.http_auth import administers_team
from shared.chassis.http_params import IdPath, SlugPath
from shared.chassis.problems import Problem, documented, keyed_route_refusals
from shared.outbox.changes import AlreadyAnnounced


async def _keys(request: Request) -> SigningKeys:
    keys: SigningKeys = request.app.state.signing_keys
    return keys


TeamAdmin = Annotated[Principal, Depends(administers_team("signing keys"))]
Keys = Annotated[SigningKeys, Depends(_keys)]
Settings = Annotated[RegistrationSettings, Depends(settings_of)]
router = APIRouter(
    prefix="/v1/teams/{team}/signing-keys",
    tags=["signing-keys"],
    responses=keyed_route_refusals("invalid"),
)


@router.post("", status_code=201, responses=documented("conflict"))
async def create_signing_key(
    team: SlugPath, body: SigningKeyCreate, caller: TeamAdmin, keys: Keys, settings: Settings, response: Response
) -> SigningKeyPublic:
    """Trust a public key: versions registered with a signature it verifies record their provenance.

    Only elliptic-curve keys on P-256 or P-384 (PEM SubjectPublicKeyInfo) are accepted, anything else
    is 422 ``invalid``; a key the team already trusts, or one past
    ``REGISTRATION_MAX_SIGNING_KEYS_PER_TEAM`` (20), is 409 ``conflict``.
    """
    try:
        info = read_public_key(body.public_key)
    except ValueError as exc:
        raise Problem(
            "invalid", str(exc), errors=[{"loc": ["body", "public_key"], "msg": str(exc), "type": "value_error"}]
        ) from None
    quota = settings.max_signing_keys_per_team
    try:
        record = await keys.create(team, body, info, actor=caller, quota=quota)
    except AlreadyTrusted as same:
        raise Problem(
            "conflict", f"team {team!r} already trusts this key as {same.record['_id']} ({info.fingerprint})"
        ) from None
    except QuotaReached:
        setting = RegistrationSettings.env_name("max_signing_keys_per_team")
        raise Problem(
            "conflict", f"team {team!r} already has {quota} signing keys, the most {setting} allows"
        ) from None
    response.headers["Location"] = f"/v1/teams/{team}/signing-keys/{record['_id']}"
    return public(record)


@router.get("")
async def list_signing_keys(team: SlugPath, caller: TeamAdmin, keys: Keys) -> SigningKeyList:
    """The team's signing keys, oldest first."""
    return SigningKeyList(items=[public(record) for record in await keys.of_team(team)])


@router.delete("/{key_id}", status_code=204, responses=documented("not_found"))
async def delete_signing_key(team: SlugPath, key_id: IdPath, caller: TeamAdmin, keys: Keys) -> None:
    """Stop trusting a key: signatures it made are refused from now on; versions it verified keep their provenance."""
    record = await keys.live(team, key_id)
    if record is None:
        raise Problem("not_found", f"team {team!r} has no signing key {key_id!r}")
    with contextlib.suppress(AlreadyAnnounced):  # deleted by a request running beside this one
        await keys.delete(record, actor=caller)
