"""The instance's CA and its leaves: what a client checks (names, usages, validity, signature) is there."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from helpers.pki import NOW

from regctl.tls import CA_DAYS, selfsigned
from regctl.tls.bundle import covers, issued_by, key_matches, self_signed


def test_ca_is_a_self_signed_ca_for_leaves_only() -> None:
    ca = selfsigned.make_ca("regctl test CA", now=NOW)
    cert = ca.certificate
    assert self_signed(cert)
    assert cert.subject.rfc4514_string() == "CN=regctl test CA"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert (constraints.critical, constraints.value.ca, constraints.value.path_length) == (True, True, 0)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_cert_sign, usage.crl_sign, usage.digital_signature) == (True, True, False)
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=CA_DAYS)
    assert cert.not_valid_before_utc == NOW - datetime.timedelta(minutes=5)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"


def test_leaf_names_its_host_in_subject_alt_name() -> None:
    ca = selfsigned.make_ca("CA", now=NOW)
    leaf = selfsigned.make_leaf(ca, ["Registry.Test", "localhost", "127.0.0.1", "::1", "localhost"], days=30, now=NOW)
    cert = leaf.certificate
    assert issued_by(cert, ca.certificate) and key_matches(cert, leaf.key)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [
        x509.DNSName("registry.test"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    assert cert.subject.rfc4514_string() == "CN=Registry.Test"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=30)
    for host in ("registry.test", "localhost", "127.0.0.1", "::1"):
        assert covers(cert, host)


def test_leaf_needs_a_name() -> None:
    with pytest.raises(ValueError, match="at least one name"):
        selfsigned.make_leaf(selfsigned.make_ca("CA"), [])


def test_signing_pair_is_a_self_signed_ec_p256_certificate() -> None:
    pair = selfsigned.make_signing_pair("regctl token signer", now=NOW)
    assert self_signed(pair.certificate) and key_matches(pair.certificate, pair.key)
    assert pair.key.curve.name == "secp256r1"
    assert pair.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_pem_round_trip_through_load_issued() -> None:
    ca = selfsigned.make_ca("CA")
    assert ca.key_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    loaded = selfsigned.load_issued(ca.certificate_pem.encode(), ca.key_pem.encode())
    assert loaded.certificate == ca.certificate
    other = selfsigned.make_ca("other")
    with pytest.raises(ValueError, match="not the certificate's EC key"):
        selfsigned.load_issued(ca.certificate_pem.encode(), other.key_pem.encode())
