"""The services' identity on the bus: an HMAC over every record they publish.

Anyone who may produce to a topic can write a record that looks like a service's event. The
consumers that act on what a record says about its origin — the audit log (actor, team), the
tracker (reports relayed by its HTTP bridge) and webhook fan-out (events sent on to teams) —
trust it only when its signature verifies under ``EVENT_SIGNING_KEY``, a secret every service
shares and no producer holds. During a rotation ``EVENT_SIGNING_PREVIOUS_KEY`` still verifies.

The MAC covers the value, ``content-type`` and every ``ce_`` header (the CloudEvent's
attributes) but itself, each length-prefixed, so no bytes can move between fields. Other
headers (a client library's own, a credential) are not part of the event and not covered.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from registry_contract.envelope import CloudEvent, Headers
from shared.chassis.settings import CommonSettings, ConfigurationError

SIGNATURE_HEADER = "ce_registrysignature"  # a CloudEvents extension attribute in binary mode
PRINCIPAL_HEADER = "ce_principal"  # key id a service acted for (the tracker's HTTP bridge)


class SigningKeyMissing(ConfigurationError):
    """A service was started without ``EVENT_SIGNING_KEY``."""


def _covered(name: str) -> bool:
    return (name.startswith("ce_") and name != SIGNATURE_HEADER) or name == "content-type"


def _mac(key: bytes, value: bytes, headers: Iterable[tuple[str, bytes]]) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(len(value).to_bytes(8, "big") + value)
    for name, raw in sorted((n.lower(), bytes(v)) for n, v in headers if _covered(n.lower())):
        encoded = name.encode()
        mac.update(len(encoded).to_bytes(4, "big") + encoded + len(raw).to_bytes(8, "big") + raw)
    return "v1=" + mac.hexdigest()


class EventSigner:
    """Signs what this service publishes and verifies what the others did."""

    def __init__(self, key: bytes, *, previous: bytes | None = None) -> None:
        if len(key) < 16:
            raise ConfigurationError("EVENT_SIGNING_KEY must be at least 16 bytes")
        self._key, self._verifying = key, [key, *([previous] if previous else [])]

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> EventSigner:
        """The signer of ``settings``; a service cannot run without the key."""
        if settings.event_signing_key is None:
            raise SigningKeyMissing(
                "EVENT_SIGNING_KEY is not set: give every service the same secret "
                "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        previous = settings.event_signing_previous_key
        return cls(
            settings.event_signing_key.get_secret_value().encode(),
            previous=previous.get_secret_value().encode() if previous else None,
        )

    def sign(self, value: bytes, headers: Headers) -> Headers:
        """``headers`` plus the signature of the record."""
        return [*headers, (SIGNATURE_HEADER, _mac(self._key, value, headers).encode())]

    def encode(self, event: CloudEvent, *, acting_for: str | None = None) -> tuple[bytes, dict[str, str]]:
        """``event`` in binary mode, signed, with headers as FastStream publishes them.

        ``acting_for`` is the key id of the caller a service publishes for (``ce_principal``).
        """
        value, headers = event.to_kafka()
        if acting_for is not None:
            headers.append((PRINCIPAL_HEADER, acting_for.encode()))
        return value, {name: raw.decode() for name, raw in self.sign(value, headers)}

    def verify(self, value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> bool:
        """Whether a record was published by a service holding the key (current or previous)."""
        listed = [(name, bytes(raw)) for name, raw in headers]
        given = [raw for name, raw in listed if name.lower() == SIGNATURE_HEADER]
        if len(given) != 1 or value is None:
            return False
        return any(hmac.compare_digest(given[0], _mac(key, value, listed).encode()) for key in self._verifying)
