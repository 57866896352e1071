"""What an ACME CA hands back, without a CA: chains for the CLI and deploy unit tests of tls.mode acme."""

from __future__ import annotations

import datetime

from helpers import pki
from regctl.tls.acme_client import IssuedCertificate


def issued(*names: str, days: int = 90, now: datetime.datetime | None = None) -> tuple[IssuedCertificate, pki.Issued]:
    """A certificate for ``names`` as a CA issues it (the leaf, then its intermediate), and the CA's root."""
    moment = now or datetime.datetime.now(datetime.UTC)
    root = pki.root("Fake ACME Root", now=moment)
    middle = pki.intermediate(root, "Fake ACME Intermediate", now=moment)
    leaf = pki.leaf(middle, *names, now=moment, days=days)
    certificate = leaf.certificate
    return (
        IssuedCertificate(
            pki.pem(leaf, middle), leaf.key_pem, certificate.not_valid_before_utc, certificate.not_valid_after_utc
        ),
        root,
    )
