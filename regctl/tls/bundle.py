"""A certificate chain and its key, read from PEM and checked before the server gets them (``cert import``).

The seed's manual step, ``cat domain.crt intermediate-certificates.pem > certs/domain.crt``, goes wrong in
a few ways that only show when a client connects: the intermediate first, the key of another certificate,
an unrelated certificate in the bundle, a host name the certificate does not cover, an expired certificate.
:func:`check_bundle` finds each of them and says so in one line (a RegctlError), and puts the chain in the
order TLS wants (RFC 8446 4.4.2: the leaf first, then each certificate followed by its issuer).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from regctl.errors import RegctlError

# Below this many days left, a certificate is accepted with a warning.
WARN_DAYS = 30


def describe(certificate: x509.Certificate) -> str:
    """A certificate as people name it: its subject (``CN=registry.example.com``)."""
    return certificate.subject.rfc4514_string() or "(empty subject)"


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every PEM certificate in ``data``, in file order; RegctlError naming ``source`` when there is none."""
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        hint = "give a PEM file (-----BEGIN CERTIFICATE-----)"
        raise RegctlError(f"{source}: no PEM certificate in it", hint) from None
    return certificates


def load_private_key(data: bytes, source: str) -> PrivateKeyTypes:
    """The unencrypted PEM private key in ``data``; RegctlError naming ``source`` otherwise."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise RegctlError(
            f"{source}: the private key is encrypted",
            f"the server cannot ask for its password: decrypt it first (openssl pkey -in {source} -out KEY)",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        hint = "give the private key in PEM (-----BEGIN PRIVATE KEY-----, or RSA or EC PRIVATE KEY)"
        raise RegctlError(f"{source}: no PEM private key in it", hint) from None


def key_pem(key: PrivateKeyTypes) -> str:
    """``key`` as unencrypted PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``), the form of every key regctl writes."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _public(key: x509.Certificate | PrivateKeyTypes) -> bytes:
    public = key.public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    return _public(certificate) == _public(key)


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s name and key signed ``certificate``."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def self_signed(certificate: x509.Certificate) -> bool:
    return issued_by(certificate, certificate)


def names(certificate: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses of its subjectAltName (empty without one)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def covers(certificate: x509.Certificate, host: str) -> bool:
    """Whether a client connecting to ``host`` accepts ``certificate`` by name (RFC 6125): an IP address must
    be an IP entry; a DNS name an equal entry, or a wildcard entry for exactly its leftmost label."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in names(certificate):
        if address is not None:
            if entry == str(address):
                return True
            continue
        pattern, name = entry.lower().rstrip("."), host.lower().rstrip(".")
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def not_after(certificate: x509.Certificate) -> datetime.datetime:
    return certificate.not_valid_after_utc


def days_left(certificate: x509.Certificate, now: datetime.datetime) -> int:
    """Whole days until it expires; negative once it has."""
    return (not_after(certificate) - now) // datetime.timedelta(days=1)


@dataclass(frozen=True)
class Bundle:
    """A checked chain: ``chain`` is what the server sends (the leaf first, then intermediates, never a
    self-signed root unless the leaf is one); ``top`` is the last certificate of the chain as given, the one
    a client must trust (``cert trust``)."""

    chain: list[x509.Certificate]
    top: x509.Certificate
    reordered: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def chain_pem(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain)

    @property
    def top_pem(self) -> str:
        return self.top.public_bytes(serialization.Encoding.PEM).decode()


def _unique(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    # The leaf given twice (in --cert and in --chain) is one certificate, not a stray.
    seen: list[x509.Certificate] = []
    for certificate in certificates:
        if certificate not in seen:
            seen.append(certificate)
    return seen


def _path(leaf: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    """``leaf`` followed by each certificate's issuer among ``others``; RegctlError for any left over."""
    path = [leaf]
    rest = [c for c in others if c != leaf]
    while rest and not self_signed(path[-1]):
        current = path[-1]
        issuer = next((c for c in rest if issued_by(current, c)), None)
        if issuer is None:
            named = next((c for c in rest if c.subject == current.issuer), None)
            if named is not None:
                raise RegctlError(
                    f"{describe(current)} names {describe(named)} as its issuer, "
                    "but the signature does not verify with that certificate's key"
                )
            break
        path.append(issuer)
        rest.remove(issuer)
    if rest:
        last = path[-1]
        raise RegctlError(
            f"{describe(rest[0])} is not part of the chain of {describe(leaf)}: "
            f"{describe(last)} is issued by {last.issuer.rfc4514_string()}",
            "give only the certificate and the intermediates that lead from it to its CA",
        )
    return path


def check_bundle(
    certificates: Sequence[x509.Certificate],
    key: PrivateKeyTypes,
    host: str,
    now: datetime.datetime,
    *,
    key_source: str = "the key",
) -> Bundle:
    """The chain of the certificate ``key`` belongs to, in TLS order, checked: the key matches a certificate,
    every other certificate is on the path from it to its top (each signed by the next), the top verifies its
    own signature when it is self-signed, the leaf covers ``host``, and nothing has expired or is not valid
    yet. Fewer than WARN_DAYS days left is a warning. Every problem is a RegctlError of one line."""
    given = _unique(certificates)
    leaf = next((c for c in given if key_matches(c, key)), None)
    if leaf is None:
        what = f"the certificate {describe(given[0])}" if len(given) == 1 else "any of the certificates given"
        raise RegctlError(f"{key_source} does not match {what}", "give the key the certificate was issued for")
    path = _path(leaf, given)
    top = path[-1]
    if top.subject == top.issuer and not self_signed(top):
        raise RegctlError(f"{describe(top)} is self-issued, but its own signature does not verify")
    warnings: list[str] = []
    for certificate in path:
        role = "the certificate" if certificate is leaf else f"the chain's {describe(certificate)}"
        if certificate.not_valid_before_utc > now:
            raise RegctlError(
                f"{role} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                "check this host's clock, or wait until then",
            )
        left = days_left(certificate, now)
        if not_after(certificate) <= now:
            raise RegctlError(f"{role} expired on {not_after(certificate):%Y-%m-%d}", "get a new one")
        if left < WARN_DAYS:
            warnings.append(f"{role} expires in {left} days ({not_after(certificate):%Y-%m-%d}): renew it soon")
    if not covers(leaf, host):
        listed = ", ".join(names(leaf)) or "none"
        raise RegctlError(
            f"the certificate does not cover {host} (its names: {listed})",
            "get one whose subjectAltName lists the host, or fix host in regctl.yaml",
        )
    # The server sends intermediates, not the root: clients must have the root already.
    chain = path[:-1] if len(path) > 1 and self_signed(top) else path
    reordered = given[: len(path)] != path
    return Bundle(chain, top, reordered, warnings)
