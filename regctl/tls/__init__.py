"""Certificates for the registry's HTTPS, with ``cryptography``; no Click, no instance directory.

- :mod:`regctl.tls.selfsigned`: a local CA and the leaves it issues; the token service's signing pair.
- :mod:`regctl.tls.bundle`: reading PEM, putting a chain in order and checking it (``regctl cert import``).
- :mod:`regctl.tls.inspect`: what ``regctl cert status`` reports about a certificate and its key.
- :mod:`regctl.tls.acme_client`: certificates from an ACME CA (Let's Encrypt); :mod:`regctl.tls.accounts` keeps
  the ACME account, :mod:`regctl.tls.challenges` answers HTTP-01 and TLS-ALPN-01.
"""

# Validity of what regctl issues, in days. Here, not in selfsigned.py, so the CLI can show the default
# without importing cryptography.
CA_DAYS = 3650
LEAF_DAYS = 365
