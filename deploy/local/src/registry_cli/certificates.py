"""Certificates for the local stack's TLS: a private CA made once per data directory, and leaves it signs.

Production certificates come from the cluster's issuer (cert-manager, a cloud load balancer);
locally nothing public can vouch for 127.0.0.1, so the stack makes its own authority and a
client trusts it by its file (``SSL_CERT_FILE=.data/tls/ca.pem``). Keys are written readable by
their owner only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from registry_cli.files import write_private

VALIDITY = timedelta(days=397)  # the longest a browser accepts for a leaf
RENEW_BEFORE = timedelta(days=30)  # a certificate this close to its end is made again at start


@dataclass(frozen=True)
class Leaf:
    """A certificate chain and its key, as PEM files, and the CA file that verifies them."""

    cert: Path
    key: Path
    ca: Path


def leaf(tls_dir: Path, name: str, hosts: list[str]) -> Leaf:
    """The leaf ``name`` for ``hosts`` (DNS names or IP addresses), signed by the directory's CA.

    Made once and kept while it still serves: it is made again when it nears its end, names other
    hosts than asked (the stack's host changed), or was not signed by the current CA.
    """
    ca_cert, ca_key = _authority(tls_dir)
    cert_path, key_path = tls_dir / f"{name}.pem", tls_dir / f"{name}-key.pem"
    if not _still_serves(cert_path, key_path, hosts, ca_cert):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        names: list[x509.GeneralName] = [_general_name(host) for host in hosts]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_private(key_path, _key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + _cert_pem(ca_cert))
    return Leaf(cert_path, key_path, tls_dir / "ca.pem")


def _authority(tls_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The directory's CA certificate and key, made on first use."""
    cert_path, key_path = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - datetime.now(UTC) > RENEW_BEFORE:
            return cert, key
    tls_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Model Registry local CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
    cert_path.write_bytes(_cert_pem(cert))
    return cert, key


def _still_serves(cert_path: Path, key_path: Path, hosts: list[str], ca: x509.Certificate) -> bool:
    """Whether the leaf on disk is there, far from its end, for exactly ``hosts``, and signed by ``ca``."""
    if not cert_path.exists() or not key_path.exists():
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())  # the first PEM: the leaf
    try:
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    return set(names) == {_general_name(host) for host in hosts} and (
        cert.not_valid_after_utc - datetime.now(UTC) > RENEW_BEFORE
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8 = serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
