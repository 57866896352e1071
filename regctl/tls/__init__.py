"""Certificates for the registry's HTTPS, with ``cryptography``; no Click, no instance directory.

- :mod:`regctl.tls.selfsigned`: a local CA and the leaves it issues; the token service's signing pair.
- :mod:`regctl.tls.bundle`: reading PEM, putting a chain in order and checking it (``regctl cert import``).
- :mod:`regctl.tls.inspect`: what ``regctl cert status`` reports about a certificate and its key.
- :mod:`regctl.tls.acme_client`: certificates from an ACME CA (Let's Encrypt); :mod:`regctl.tls.accounts` keeps
  the ACME account, :mod:`regctl.tls.challenges` answers HTTP-01 and TLS-ALPN-01, and
  :mod:`regctl.tls.challenge_spec` holds what it and the registry's own listeners agree on.
"""

import re

# A lower-case DNS name as an ACME certificate carries it (RFC 1123 labels, no wildcard: HTTP-01 and
# TLS-ALPN-01 cannot prove one): acme.domains, and the file a TLS-ALPN-01 certificate is named after.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DNS_NAME_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")

# Validity of what regctl issues, in days. Here, not in selfsigned.py, so the CLI can show the default
# without importing cryptography.
CA_DAYS = 3650
LEAF_DAYS = 365
