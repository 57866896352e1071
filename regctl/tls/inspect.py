"""What ``regctl cert status`` reports about the certificate a registry serves, as plain data (JSON-ready)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from regctl.tls.bundle import covers, days_left, describe, issued_by, key_matches, names, not_after, self_signed


def iso_time(moment: datetime.datetime) -> str:
    """A UTC time as JSON reports carry it: ``2026-01-31T12:00:00Z``."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _entry(certificate: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": describe(certificate),
        "issuer": certificate.issuer.rfc4514_string(),
        "not_after": iso_time(not_after(certificate)),
        "self_signed": self_signed(certificate),
    }


def inspect_chain(
    chain: Sequence[x509.Certificate], key: PrivateKeyTypes | None, host: str, now: datetime.datetime
) -> dict[str, Any]:
    """The leaf (``chain[0]``): subject, names, issuer, validity and days left, whether it covers ``host``
    and matches ``key`` (None: no key to compare); ``chain``: every certificate in file order;
    ``chain_ok``: each one is signed by the next."""
    leaf = chain[0]
    left = days_left(leaf, now)
    return {
        "subject": describe(leaf),
        "names": names(leaf),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_before": iso_time(leaf.not_valid_before_utc),
        "not_after": iso_time(not_after(leaf)),
        "days_left": left,
        "expired": not_after(leaf) <= now,
        "host": host,
        "covers_host": covers(leaf, host),
        "key_matches": None if key is None else key_matches(leaf, key),
        "chain": [_entry(certificate) for certificate in chain],
        "chain_ok": all(issued_by(chain[i], chain[i + 1]) for i in range(len(chain) - 1)),
    }
