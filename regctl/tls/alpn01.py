"""What both sides of TLS-ALPN-01 (RFC 8737) agree on: :mod:`regctl.tls.challenges`, which answers it or
writes the certificate files, and :mod:`regctl.registry.alpn`, the registry's listener that presents them.
Kept free of the ``acme`` library, which the server does not load."""

from __future__ import annotations

import ssl

ALPN_PROTOCOL = "acme-tls/1"
# Under the challenge directory: <domain>.pem (certificate and key) for the registry's TLS listener.
CHALLENGE_SUBDIR = "tls-alpn-01"


def challenge_context() -> ssl.SSLContext:
    """A server context offering only ``acme-tls/1``, TLS 1.2 at least (RFC 8737 §4), with no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([ALPN_PROTOCOL])
    return context
