"""Chains for the certificate tests: CAs, intermediates and leaves at chosen dates, written as PEM files.

Leaves come from ``regctl.tls.selfsigned.make_leaf`` (what ``regctl cert selfsigned`` issues); intermediates,
which regctl never makes, are built here.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from regctl.tls.selfsigned import Issued, make_ca, make_leaf

NOW = datetime.datetime(2030, 1, 15, 12, 0, tzinfo=datetime.UTC)


def root(name: str = "Test Root CA", now: datetime.datetime = NOW, days: int = 3650) -> Issued:
    return make_ca(name, days=days, now=now)


def intermediate(
    parent: Issued, name: str = "Test Intermediate CA", now: datetime.datetime = NOW, days: int = 1825
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(parent.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(parent.key, hashes.SHA256())
    )
    return Issued(certificate, key)


def leaf(issuer: Issued, *names: str, now: datetime.datetime = NOW, days: int = 365) -> Issued:
    return make_leaf(issuer, list(names) or ["registry.example.com"], days=days, now=now)


def pem(*certificates: Issued) -> str:
    return "".join(c.certificate_pem for c in certificates)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def encrypted_key_pem(issued: Issued, password: bytes = b"pw") -> str:
    return issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    ).decode()
