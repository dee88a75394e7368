"""Who a Kafka record comes from, as far as the record itself proves it.

A record proves a principal in one of two ways: it is signed with an API key
(:mod:`registry_contract.record_signing`: commands and reports from producers and pipelines), or it
is signed by a service (:mod:`shared.chassis.signing`) that names the key it acted for
(``ce_principal``, the tracker's HTTP bridge). A bearer key in an ``authorization`` header (the
earlier form) proves one only while ``KAFKA_ACCEPT_BEARER_KEYS`` allows it. Anything else a record
says about who sent it — a key id in its data, a team in its payload — is a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.structs import ConsumerRecord

from registry_contract.auth import Principal, bearer_token
from registry_contract.envelope import CloudEvent
from shared.chassis.keystore import KeyStore
from shared.chassis.settings import CommonSettings
from shared.chassis.signing import PRINCIPAL_HEADER, EventSigner

LOG_APPEND_TIME = 1  # a record's timestamp type when the broker stamped it (topic message.timestamp.type)
NO_PROOF = "the record carries no signature: sign it with an API key (ce_keyid, ce_signature)"
BAD_SIGNATURE = "the record's signature does not verify under a valid key"
BEARER_REFUSED = (
    "bearer keys are refused on Kafka: sign the record with the key (ce_keyid, ce_signature) instead of "
    "sending it (KAFKA_ACCEPT_BEARER_KEYS allows them during a transition)"
)


@dataclass(frozen=True)
class Provenance:
    """What a record proves: its principal, or why it proves none (a message for its sender)."""

    principal: Principal | None
    why_not: str | None = None


class RecordIdentity:
    """Authenticates records: by their key's signature, by a service's signature, or (in transition) a bearer key."""

    def __init__(
        self,
        *,
        keystore: KeyStore,
        signer: EventSigner,
        accept_bearer: bool = False,
        window: timedelta = timedelta(minutes=5),
    ) -> None:
        self._keystore, self._signer = keystore, signer
        self._accept_bearer, self._window = accept_bearer, window

    @classmethod
    def of(cls, settings: CommonSettings, *, keystore: KeyStore, signer: EventSigner) -> RecordIdentity:
        """The identity of ``settings`` (``KAFKA_ACCEPT_BEARER_KEYS``, ``KAFKA_SIGNATURE_WINDOW_SECONDS``)."""
        return cls(
            keystore=keystore,
            signer=signer,
            accept_bearer=settings.kafka_accept_bearer_keys,
            window=timedelta(seconds=settings.kafka_signature_window_seconds),
        )

    def signed(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Whether a service published ``record`` (its signature verifies)."""
        return self._signer.verify(record.value, record.headers or ())

    async def principal(self, record: ConsumerRecord[Any, Any], event: CloudEvent) -> Principal | None:
        """The proven principal of ``record``, or ``None``."""
        return (await self.provenance(record, event)).principal

    async def provenance(self, record: ConsumerRecord[Any, Any], event: CloudEvent) -> Provenance:
        """The proven principal of ``record``, or why there is none.

        A bearer key is refused even beside a valid signature: its producer must stop sending it.
        """
        if event.authorization and not self._accept_bearer:
            return Provenance(None, BEARER_REFUSED)
        if event.proof is not None:
            if event.proof.flaw is not None:
                return Provenance(None, f"the record's signature is not in its format: {event.proof.flaw}")
            if not event.proof.time_sent:
                return Provenance(None, "a signed record needs ce_time, which its signature covers")
            if abs(event.time - _reference_time(record)) > self._window:
                seconds = round(self._window.total_seconds())
                window = CommonSettings.env_name("kafka_signature_window_seconds")
                return Provenance(
                    None, f"the record's ce_time is more than {seconds} s ({window}) from the time it was sent"
                )
            principal = await self._keystore.verify(event.proof)
            return Provenance(principal, None if principal else BAD_SIGNATURE)
        if event.authorization:
            principal = await self._keystore.authenticate(bearer_token(event.authorization))
            return Provenance(principal, None if principal else "the record's bearer key is not valid")
        acted_for = _header(record, PRINCIPAL_HEADER)
        if acted_for and self.signed(record):
            principal = await self._keystore.principal_of(acted_for)
            return Provenance(principal, None if principal else "the key the service acted for is no longer valid")
        return Provenance(None, NO_PROOF)


def _reference_time(record: ConsumerRecord[Any, Any]) -> datetime:
    """When the broker took the record, if it says so; else now (a producer's create time proves nothing)."""
    if record.timestamp_type == LOG_APPEND_TIME and record.timestamp:
        return datetime.fromtimestamp(record.timestamp / 1000, UTC)
    return datetime.now(UTC)


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    values = [bytes(raw) for key, raw in (record.headers or ()) if key.lower() == name]
    return values[0].decode("utf-8", "replace") if len(values) == 1 else None
