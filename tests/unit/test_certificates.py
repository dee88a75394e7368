"""The local stack's certificates: kept while they serve, made again when they no longer do."""

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from registry_cli import certificates
from registry_cli.certificates import leaf

pytestmark = pytest.mark.unit


def subject_alternative_names(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in names}


def test_a_leaf_that_still_serves_is_kept(tmp_path: Path) -> None:
    first = leaf(tmp_path, "stack", ["127.0.0.1", "localhost"])
    before = first.cert.read_bytes()
    assert leaf(tmp_path, "stack", ["127.0.0.1", "localhost"]).cert.read_bytes() == before


def test_a_leaf_for_other_hosts_is_made_again(tmp_path: Path) -> None:
    # That a certificate's files exist is not enough to reuse it: the stack's host may have changed.
    leaf(tmp_path, "stack", ["127.0.0.1", "localhost"])
    again = leaf(tmp_path, "stack", ["10.0.0.5", "localhost"])
    assert subject_alternative_names(again.cert) == {"10.0.0.5", "localhost"}


def test_a_leaf_from_a_replaced_ca_is_made_again(tmp_path: Path) -> None:
    old = leaf(tmp_path, "stack", ["localhost"])
    old_cert = old.cert.read_bytes()
    (tmp_path / "ca-key.pem").unlink()  # the CA is made anew; the leaf on disk is the old CA's
    new = leaf(tmp_path, "stack", ["localhost"])
    assert new.cert.read_bytes() != old_cert
    x509.load_pem_x509_certificate(new.cert.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(new.ca.read_bytes())
    )


def test_a_leaf_near_its_end_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certificates, "VALIDITY", timedelta(days=3))
    short = leaf(tmp_path, "stack", ["localhost"]).cert.read_bytes()
    monkeypatch.undo()
    assert leaf(tmp_path, "stack", ["localhost"]).cert.read_bytes() != short


def test_a_missing_key_makes_the_leaf_again(tmp_path: Path) -> None:
    made = leaf(tmp_path, "stack", ["localhost"])
    cert = made.cert.read_bytes()
    made.key.unlink()
    assert leaf(tmp_path, "stack", ["localhost"]).cert.read_bytes() != cert
