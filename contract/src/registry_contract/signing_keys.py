"""Signing keys: the public keys whose signatures a team trusts on the versions it registers.

A team admin adds an elliptic-curve public key (PEM, NIST P-256 or P-384); a version registered
with a provenance signature (OpenSSF model signing) is verified offline against the team's keys,
and refused ``bad_signature`` unless one of them verifies it. Each change is an event the audit
log keeps for ever (:mod:`registry_contract.identity_events`).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from registry_contract import catalog
from registry_contract.times import UtcTime

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # in a name or description: they would break the audit's one-line detail

KeyName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
PemPublicKey = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=catalog.MAX_SIGNING_KEY_PEM, pattern=r"^\s*-----BEGIN PUBLIC KEY-----[\s\S]*$"
    ),
]


class SigningKeyCreate(BaseModel):
    """A public key a team admin adds: signatures it verifies are trusted on the team's versions."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName = Field(description="a name for the key, e.g. the pipeline or person holding its private half")
    public_key: PemPublicKey = Field(
        description="the public key, PEM (-----BEGIN PUBLIC KEY-----, SubjectPublicKeyInfo): an elliptic-curve "
        "key on NIST P-256 or P-384, the kind model-signing's key signer uses"
    )
    description: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("name", "description")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("cannot hold control characters")
        return value


class SigningKeyPublic(BaseModel):
    """A team's signing key as its admins see it."""

    key_id: str
    team: str
    name: str
    algorithm: str = Field(description="the signatures it verifies: ecdsa-sha256-nistp256 or ecdsa-sha384-nistp384")
    fingerprint: str = Field(description="sha256:<hex> of the key's DER SubjectPublicKeyInfo")
    public_key: str = Field(description="the key, PEM")
    description: str | None = None
    created_at: UtcTime
    created_by: str | None = Field(None, description="the id of the key (or rule) whose caller added it")


class SigningKeyList(BaseModel):
    """A team's signing keys, oldest first."""

    items: list[SigningKeyPublic]
