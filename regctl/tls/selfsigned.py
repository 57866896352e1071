"""A local CA and the certificates it issues (``regctl cert selfsigned``, ``regctl init --tls selfsigned``).

Keys are EC P-256: every client a registry meets (Go's crypto/tls in dockerd and skopeo, OpenSSL, Python)
takes them, and they are made in microseconds. A leaf names its host in subjectAltName, since Go ignores the
common name since 1.15.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from regctl.tls import CA_DAYS, LEAF_DAYS, bundle

# Issued a little in the past, so a client whose clock is slightly behind does not see "not yet valid".
_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return bundle.key_pem(self.key)


def subject_names(names: Sequence[str]) -> list[x509.GeneralName]:
    """subjectAltName entries: an IP address (``127.0.0.1``, ``::1``) as an IP entry, anything else as DNS;
    duplicates dropped, order kept."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            entry = x509.DNSName(name.lower())
        if entry not in entries:
            entries.append(entry)
    return entries


def _now(now: datetime.datetime | None) -> datetime.datetime:
    return now or datetime.datetime.now(datetime.UTC)


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, days: int, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _usage(*, signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def make_ca(common_name: str, days: int = CA_DAYS, now: datetime.datetime | None = None) -> Issued:
    """A self-signed CA that may sign leaves only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        _builder(name, name, key.public_key(), days, _now(now))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signature=False, cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def make_leaf(ca: Issued, names: Sequence[str], days: int = LEAF_DAYS, now: datetime.datetime | None = None) -> Issued:
    """A server certificate for ``names`` (the first is also its common name), signed by ``ca``."""
    if not names:
        raise ValueError("a leaf certificate needs at least one name")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    certificate = (
        _builder(subject, ca.certificate.subject, key.public_key(), days, _now(now))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signature=True, cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(subject_names(names)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(certificate, key)


def make_signing_pair(common_name: str, days: int = CA_DAYS, now: datetime.datetime | None = None) -> Issued:
    """The token service's signing key (ES256) and a self-signed certificate of it: what another registry
    (Distribution, or regctl) lists in ``auth.token.rootcertbundle`` to trust these tokens."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        _builder(name, name, key.public_key(), days, _now(now))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signature=True, cert_sign=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def load_issued(certificate_pem: bytes, key_pem: bytes) -> Issued:
    """An Issued from its PEM files (the instance's CA); ValueError when they are not an EC pair."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != certificate.public_key():
        raise ValueError("the key is not the certificate's EC key")
    return Issued(certificate, key)
