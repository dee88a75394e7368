"""How every Kafka client of a service authenticates and encrypts: one place, so none can differ.

``KAFKA_SECURITY_PROTOCOL`` is Kafka's own: ``PLAINTEXT``, ``SSL`` (TLS, optionally with a client
certificate), ``SASL_PLAINTEXT`` or ``SASL_SSL`` (a SASL mechanism, ``PLAIN`` or ``SCRAM-SHA-*``,
over plain TCP or TLS). TLS verifies the broker against ``KAFKA_SSL_CAFILE`` (the system's CAs
when unset) and presents ``KAFKA_SSL_CERTFILE``/``KAFKA_SSL_KEYFILE`` when given (mutual TLS).
A SASL protocol without a mechanism is refused at start: it would otherwise connect in the clear.
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.chassis.settings import CommonSettings, ConfigurationError

MECHANISMS: dict[str, type[SASLPlaintext] | type[SASLScram256] | type[SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


def tls_context(settings: CommonSettings) -> ssl.SSLContext | None:
    """The TLS context of the broker connections, or ``None`` for a protocol without TLS."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_ssl_certfile:
        password = settings.kafka_ssl_key_password.get_secret_value() if settings.kafka_ssl_key_password else None
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile, password)
    return context


def _mechanism(settings: CommonSettings) -> str | None:
    mechanism = (settings.kafka_sasl_mechanism or "").upper() or None
    sasl = settings.kafka_security_protocol.startswith("SASL_")
    if sasl and mechanism is None:
        raise ConfigurationError(
            f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs KAFKA_SASL_MECHANISM "
            f"({', '.join(MECHANISMS)})"
        )
    if mechanism is not None and not sasl:
        raise ConfigurationError(
            f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)"
        )
    if mechanism is not None and mechanism not in MECHANISMS:
        raise ConfigurationError(f"KAFKA_SASL_MECHANISM={mechanism} is not one of {', '.join(MECHANISMS)}")
    return mechanism


def broker_security(settings: CommonSettings) -> BaseSecurity | None:
    """FastStream's security object for the settings (``None``: plain TCP, no authentication)."""
    context = tls_context(settings)
    mechanism = _mechanism(settings)
    if mechanism is None:
        return BaseSecurity(ssl_context=context, use_ssl=True) if context is not None else None
    return MECHANISMS[mechanism](
        username=settings.kafka_sasl_username or "",
        password=settings.kafka_sasl_password or "",
        ssl_context=context,
        use_ssl=context is not None,
    )


def client_security_options(settings: CommonSettings) -> dict[str, Any]:
    """The same, as keyword arguments of plain aiokafka clients (admin, offsets, the search projection)."""
    mechanism = _mechanism(settings)
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = tls_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if mechanism is not None:
        options |= {
            "sasl_mechanism": mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return options
