"""HTTPS for the workers (``http.tls``): one listening SSLContext whose certificate can change at any time.

The listening socket keeps one context for its whole life. Its ``sni_callback``, which OpenSSL calls during
every handshake (with ``server_name`` None when the client sends no SNI, e.g. to an IP address), points each
new connection at the *current* context. Reloading builds a new context from the files and makes it current
only once it loaded: a broken or half-written certificate or key keeps the old one and logs an error. So a
certificate is renewed with no restart and no refused or dropped connection; open connections keep theirs.

Reloads happen on SIGHUP and when a file changes (a stat every ``POLL_INTERVAL`` seconds). Settings that
are fixed per connection before the callback runs (client certificate verification on or off, minimum
version) come from the first context, so turning ``clientcas`` on or off needs a restart; the CA files
themselves reload like the certificate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from regctl.config.server import TLS
from regctl.errors import ConfigError

log = logging.getLogger("regctl.tls")

POLL_INTERVAL = 2.0
_VERSIONS = {"tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3}
_UNREADABLE_HINT = "check the path, and that the user regctl serves as (--run-as) may read the file"

_Stamp = tuple[tuple[int, int, int, int] | None, ...]


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}", hint=_UNREADABLE_HINT) from None


def _no_password() -> bytes:
    # Without a callback, OpenSSL would prompt on the terminal for an encrypted key.
    return b""


def build_context(config: TLS) -> ssl.SSLContext:
    """A server context from the files ``config`` names; ConfigError naming the key of the file at fault."""
    certificate = _read(config.certificate, "http.tls.certificate")
    try:
        leaf = x509.load_pem_x509_certificates(certificate)[0]
    except ValueError:
        raise ConfigError("http.tls.certificate", f"{config.certificate}: no PEM certificate in it",
                          hint="the file must hold the certificate, then its intermediates, in PEM") from None
    try:
        key = serialization.load_pem_private_key(_read(config.key, "http.tls.key"), password=None)
    except (ValueError, TypeError):
        raise ConfigError("http.tls.key", f"{config.key}: not an unencrypted PEM private key") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (leaf.public_key().public_bytes(serialization.Encoding.DER, spki)
            != key.public_key().public_bytes(serialization.Encoding.DER, spki)):
        raise ConfigError("http.tls.key", f"{config.key} does not match the first certificate in {config.certificate}",
                          hint="the certificate file must start with the server's own certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[config.minimumtls]
    try:
        context.load_cert_chain(config.certificate, config.key, password=_no_password)
    except (OSError, ssl.SSLError) as exc:  # changed between the checks above and this read
        message = f"cannot load {config.certificate} with {config.key}: {exc}"
        raise ConfigError("http.tls.certificate", message) from None
    for index, path in enumerate(config.clientcas):
        name = f"http.tls.clientcas.{index}"
        try:
            context.load_verify_locations(cadata=_read(path, name).decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise ConfigError(name, f"{path}: no PEM certificate in it") from None
    if config.clientcas:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _stat(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ServerTLS:
    """The listening ``context`` and the current one behind it. Build it in the worker that serves."""

    def __init__(self, config: TLS) -> None:
        self._config = config
        self._paths = (config.certificate, config.key, *config.clientcas)
        self._stamp = self._stamps()
        self.context = self._current = build_context(config)
        self.context.sni_callback = self._select

    def _stamps(self) -> _Stamp:
        return tuple(_stat(path) for path in self._paths)

    def _select(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                context: ssl.SSLContext) -> None:
        if self._current is not context:
            connection.context = self._current

    def reload(self) -> bool:
        """Make a context from the files current; on failure keep the current one and log why."""
        self._stamp = self._stamps()
        try:
            self._current = build_context(self._config)
        except ConfigError as exc:
            log.error("certificate reload failed, keeping the current one", extra={"error": exc.message})
            return False
        log.info("certificate reloaded", extra={"certificate": self._config.certificate})
        return True

    def reload_if_changed(self) -> bool:
        """Reload when a file changed since the last attempt (a failed attempt is not repeated until then)."""
        return self._stamps() != self._stamp and self.reload()

    async def watch(self, interval: float = POLL_INTERVAL) -> None:
        """Poll the files for changes until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()
