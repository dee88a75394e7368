"""TLS to a Kafka broker, as aiokafka's client options: for ``registry produce`` and the stack's tools."""

from __future__ import annotations

import ssl
from typing import Any


def kafka_tls_options(cafile: str | None, certfile: str | None, keyfile: str | None) -> dict[str, Any]:
    """Aiokafka's TLS options for a broker that wants TLS (a CA) and, maybe, a client certificate."""
    if not (cafile or certfile):
        return {}
    context = ssl.create_default_context(cafile=cafile)
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    return {"security_protocol": "SSL", "ssl_context": context}
