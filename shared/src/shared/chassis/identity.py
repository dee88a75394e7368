"""Who a Kafka record comes from, as far as the record itself proves it.

A record proves a principal in one of two ways: it carries a valid API key (commands, reports
from pipelines), or it is signed by a service (:mod:`shared.chassis.signing`) that names the key it
acted for (``ce_principal``, the tracker's HTTP bridge). Anything else a record says about who
sent it — a key id in its data, a team in its payload — is a claim.
"""

from __future__ import annotations

from typing import Any

from aiokafka.structs import ConsumerRecord

from shared.chassis.keystore import KeyStore
from shared.chassis.signing import PRINCIPAL_HEADER, EventSigner
from shared.contract.auth import Principal, bearer_token
from shared.contract.envelope import CloudEvent


class RecordIdentity:
    """Authenticates records: by their key, or by a service's signature."""

    def __init__(self, *, keystore: KeyStore, signer: EventSigner) -> None:
        self._keystore, self._signer = keystore, signer

    def signed(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Whether a service published ``record`` (its signature verifies)."""
        return self._signer.verify(record.value, record.headers or ())

    async def principal(self, record: ConsumerRecord[Any, Any], event: CloudEvent) -> Principal | None:
        """The proven principal of ``record``, or ``None``."""
        if event.authorization:
            return await self._keystore.authenticate(bearer_token(event.authorization))
        acted_for = _header(record, PRINCIPAL_HEADER)
        if acted_for and self.signed(record):
            return await self._keystore.principal_of(acted_for)
        return None


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    values = [bytes(raw) for key, raw in (record.headers or ()) if key.lower() == name]
    return values[0].decode("utf-8", "replace") if len(values) == 1 else None
