"""The signature check of registrations: each signed command's provenance, or its refusal.

:mod:`registration.provenance` verifies one signature; this reads the teams' keys once per batch
and runs the checks off the event loop (CPU work). Any failure of a check is that signature's
``bad_signature`` refusal: a hostile bundle never fails the batch it came in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from registration.commands import Rejected
from registration.provenance import SignatureRefused, TrustedKey, verify
from registration.signing_keys import SigningKeys
from registry_contract import messages
from registry_contract.documents import Document
from registry_contract.times import to_stored_precision


class SignatureCheck:
    """Verifies registrations' signatures against their teams' keys, off the event loop (CPU work)."""

    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys

    async def __call__(
        self, registrations: Sequence[tuple[str, messages.RegisterModelVersion]]
    ) -> dict[str, Document | Rejected]:
        """Command key -> the provenance to record, or its ``bad_signature`` refusal."""
        trusted = await self._keys.trusted({data.team for _, data in registrations})
        now = to_stored_precision(datetime.now(UTC))
        return await asyncio.to_thread(verify_all, registrations, trusted, now=now)


def verify_all(
    registrations: Sequence[tuple[str, messages.RegisterModelVersion]],
    trusted: dict[str, list[TrustedKey]],
    *,
    now: datetime,
) -> dict[str, Document | Rejected]:
    """Verify each registration's signature with its team's keys (each bounded by the bundle's size)."""
    found: dict[str, Document | Rejected] = {}
    for key, data in registrations:
        assert data.provenance is not None  # only signed registrations are checked
        try:
            found[key] = verify(data.provenance.signature, trusted.get(data.team, []), now=now)
        except SignatureRefused as refusal:
            found[key] = Rejected("bad_signature", f"{data.team}/{data.name} {data.version}: {refusal}")
    return found
