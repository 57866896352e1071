"""What the challenge writer (:mod:`regctl.tls.challenges`) and the registry's own listeners that answer from
its files (:mod:`regctl.registry.acme_http` for HTTP-01, :mod:`regctl.registry.alpn` for TLS-ALPN-01)
agree on. Kept free of the ``acme`` library, which the server does not load."""

from __future__ import annotations

import ssl

# RFC 8555 §8.3: where the CA fetches an HTTP-01 token; the file challengedir/<token> answers it.
HTTP01_PREFIX = "/.well-known/acme-challenge/"
# RFC 8737: the only ALPN protocol a TLS-ALPN-01 validation offers.
ALPN_PROTOCOL = "acme-tls/1"
# Under the challenge directory: <domain>.pem (certificate and key) for the registry's TLS listener.
CHALLENGE_SUBDIR = "tls-alpn-01"


def challenge_context() -> ssl.SSLContext:
    """A server context offering only ``acme-tls/1``, TLS 1.2 at least (RFC 8737 §4), with no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([ALPN_PROTOCOL])
    return context
