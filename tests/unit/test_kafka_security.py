"""Kafka connection security: the broker and plain clients get the same, and none falls back to clear text."""

import ssl
from pathlib import Path

import pytest
from faststream.kafka.security import parse_security

from registry_cli.certificates import leaf
from shared.chassis.kafka import client_options
from shared.chassis.kafka_security import broker_security, client_security_options, tls_context
from shared.chassis.settings import CommonSettings, ConfigurationError

pytestmark = pytest.mark.unit


def settings(**values: object) -> CommonSettings:
    return CommonSettings(**values)  # type: ignore[arg-type]


def test_plaintext_is_plain_for_both() -> None:
    plain = settings()
    assert broker_security(plain) is None
    assert client_options(plain)["security_protocol"] == "PLAINTEXT" and "ssl_context" not in client_options(plain)


def test_ssl_without_sasl_encrypts_the_brokers_connections_too(tmp_path: Path) -> None:
    # SSL without SASL still gives the broker a security object: without one it speaks plain TCP
    # while the admin and offsets clients use TLS.
    ca = leaf(tmp_path, "kafka", ["127.0.0.1"]).ca
    tls = settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(ca))
    broker = parse_security(broker_security(tls))
    assert broker["security_protocol"] == "SSL" and isinstance(broker["ssl_context"], ssl.SSLContext)
    assert client_security_options(tls)["security_protocol"] == "SSL"
    assert isinstance(client_security_options(tls)["ssl_context"], ssl.SSLContext)


def test_sasl_ssl_carries_mechanism_credentials_and_tls() -> None:
    sasl = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="scram-sha-512",
        kafka_sasl_username="registry",
        kafka_sasl_password="pw",
    )
    broker = parse_security(broker_security(sasl))
    assert (broker["security_protocol"], broker["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert broker["sasl_plain_username"] == "registry" and broker["ssl_context"] is not None
    client = client_security_options(sasl)
    assert (client["security_protocol"], client["sasl_mechanism"], client["sasl_plain_password"]) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "pw",
    )


def test_a_client_certificate_is_presented_for_mutual_tls(tmp_path: Path) -> None:
    client = leaf(tmp_path, "registration", ["registration"])
    mutual = settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(client.ca),
        kafka_ssl_certfile=str(client.cert),
        kafka_ssl_keyfile=str(client.key),
    )
    context = tls_context(mutual)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    with pytest.raises(FileNotFoundError):
        tls_context(settings(kafka_security_protocol="SSL", kafka_ssl_certfile=str(tmp_path / "missing.pem")))


@pytest.mark.parametrize(
    "values",
    [
        {"kafka_security_protocol": "SASL_SSL"},  # no mechanism: would have connected without SASL
        {"kafka_security_protocol": "SASL_PLAINTEXT"},
        {"kafka_security_protocol": "SSL", "kafka_sasl_mechanism": "PLAIN"},  # a mechanism the protocol ignores
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI"},
    ],
)
def test_contradictory_settings_stop_the_service(values: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        broker_security(settings(**values))
