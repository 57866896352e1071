"""Answering ACME challenges: HTTP-01 (a built-in responder, or token files for the registry's own listener)
and TLS-ALPN-01 (RFC 8737), which the ``acme`` library no longer implements (a built-in responder, or
certificate files for the registry's own TLS listener, ``registry.alpn``).

Responders are context managers that listen only while the order is validated. They raise ``OSError`` when
the port cannot be bound; :mod:`regctl.tls.acme_client` turns that into the operator's message.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.server
import logging
import socket
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import josepy as jose
from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from regctl.deploy.files import atomic_write, write_new
from regctl.tls import DNS_NAME_RE, bundle
from regctl.tls.challenge_spec import CHALLENGE_SUBDIR, HTTP01_PREFIX, challenge_context

logger = logging.getLogger(__name__)

# RFC 8737 section 3: id-pe-acmeIdentifier, a critical extension holding SHA-256(key authorization).
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
TOKEN_FILE_MODE = 0o644
CHALLENGE_DIR_MODE = 0o755
_HANDSHAKE_TIMEOUT = 10.0


class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """The answer to a TLS-ALPN-01 challenge: POST ``{}`` (the key authorization is not sent)."""

    typ = "tls-alpn-01"


class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """A TLS-ALPN-01 challenge: ``validation()`` gives the certificate to present for the domain."""

    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: jose.JWK, **kwargs: Any) -> tuple[str, str]:
        return tls_alpn01_certificate(kwargs["domain"], self.key_authorization(account_key))


# acme parses an unknown challenge type as UnrecognizedChallenge; registering ours lets authorizations carry a
# TLSALPN01 and ClientV2.answer_challenge post its response. A future acme that ships its own keeps it.
if TLSALPN01.typ not in challenges.Challenge.TYPES:
    challenges.Challenge.register(TLSALPN01)
    challenges.ChallengeResponse.register(TLSALPN01Response)


def listen(bind: str, port: int) -> socket.socket:
    """A listening TCP socket on ``bind`` (``""``: every interface, IPv6 and IPv4 when the host has both)."""
    if bind in ("", "::") and socket.has_dualstack_ipv6():
        return socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    return socket.create_server((bind or "0.0.0.0", port), family=family)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A socketserver on an already bound socket (see :func:`listen`)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, sock: socket.socket, handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock


@contextlib.contextmanager
def _serving(server: _Server) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _HTTP01Handler(http.server.BaseHTTPRequestHandler):
    server: _HTTP01Server

    def do_GET(self) -> None:
        body = self.server.resources.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http-01 responder: %s - %s", self.address_string(), format % args)


class _HTTP01Server(_Server):
    resources: Mapping[str, str]


@contextlib.contextmanager
def http01_standalone(bind: str, port: int, resources: Mapping[str, str]) -> Iterator[None]:
    """Serve ``resources`` ({URL path: body}, e.g. ``/.well-known/acme-challenge/<token>``) over plain HTTP on
    ``bind:port`` for the duration of the block; every other path is 404."""
    server = _HTTP01Server(listen(bind, port), _HTTP01Handler)
    server.resources = dict(resources)
    with _serving(server):
        yield


def _make_dir(directory: Path) -> bool:
    """``directory`` made 0755 (readable by the server's user whatever the umask) if missing; whether it was."""
    if directory.is_dir():
        return False
    directory.mkdir(mode=CHALLENGE_DIR_MODE, parents=True)
    directory.chmod(CHALLENGE_DIR_MODE)
    return True


@contextlib.contextmanager
def webroot(challenge_dir: Path, resources: Mapping[str, str]) -> Iterator[None]:
    """Write each of ``resources`` ({``/.well-known/acme-challenge/<token>``: body}) to ``challenge_dir/<token>``
    (0644; the directory made 0755 if missing) for the registry's listener to serve; removed afterwards."""
    _make_dir(challenge_dir)
    written: list[Path] = []
    try:
        for path, body in resources.items():
            token = path.removeprefix(HTTP01_PREFIX)
            if token == path or not token or "/" in token or token.startswith("."):
                raise ValueError(f"not an HTTP-01 challenge path: {path!r}")
            target = challenge_dir / token
            target.unlink(missing_ok=True)
            written.append(target)
            write_new(target, body, TOKEN_FILE_MODE, exact=True)
        yield
    finally:
        for target in written:
            target.unlink(missing_ok=True)


def tls_alpn01_path(challenge_dir: Path, domain: str) -> Path:
    """Where the registry's TLS listener looks for ``domain``'s TLS-ALPN-01 certificate and key (one PEM file).
    ValueError when ``domain`` is not a lower-case DNS name (it names a file)."""
    if not DNS_NAME_RE.fullmatch(domain):
        raise ValueError(f"not a domain name for a TLS-ALPN-01 challenge file: {domain!r}")
    return challenge_dir / CHALLENGE_SUBDIR / f"{domain}.pem"


@contextlib.contextmanager
def tls_alpn01_webroot(challenge_dir: Path, certs: Mapping[str, tuple[str, str]]) -> Iterator[None]:
    """Write ``certs[domain]`` ((cert PEM, key PEM), see :func:`tls_alpn01_certificate`) to
    ``challenge_dir/tls-alpn-01/<domain>.pem`` (:func:`tls_alpn01_path`) for the registry's own TLS listener
    (``registry.alpn``) to present; removed afterwards, with the ``tls-alpn-01`` directory if this made it.

    Each file is written in full under a temporary name, then renamed, so the listener never reads half of
    one. Mode 0644, directories 0755 as :func:`webroot`: the server may run as another user, and the key is
    made for this one challenge (it proves nothing once the order is done)."""
    paths = {domain: tls_alpn01_path(challenge_dir, domain) for domain in certs}  # ValueError before writing
    subdir = challenge_dir / CHALLENGE_SUBDIR
    _make_dir(challenge_dir)
    made = _make_dir(subdir)
    written: list[Path] = []
    try:
        for domain, (cert_pem, key_pem) in certs.items():
            atomic_write(paths[domain], cert_pem + key_pem, TOKEN_FILE_MODE, exact=True)
            written.append(paths[domain])
        yield
    finally:
        for target in written:
            target.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):  # not empty: someone else's files
                subdir.rmdir()


def tls_alpn01_certificate(domain: str, key_authorization: str) -> tuple[str, str]:
    """The self-signed certificate a TLS-ALPN-01 validation expects for ``domain`` (RFC 8737 section 3): the
    domain as its only subjectAltName and the critical acmeIdentifier extension. Returns (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode()).digest()
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME TLS-ALPN-01 challenge")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        # The value is the DER encoding of an OCTET STRING of the 32-byte digest.
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return cert_pem, bundle.key_pem(key)


class _TLSALPN01Handler(socketserver.BaseRequestHandler):
    server: _TLSALPN01Server

    def handle(self) -> None:
        self.request.settimeout(_HANDSHAKE_TIMEOUT)
        try:
            with self.server.context.wrap_socket(self.request, server_side=True):
                pass  # the validator only needs the handshake (certificate and ALPN), then hangs up
        except (OSError, ssl.SSLError) as error:
            logger.debug("tls-alpn-01 responder: %s: %s", self.client_address, error)


class _TLSALPN01Server(_Server):
    context: ssl.SSLContext


@contextlib.contextmanager
def tls_alpn01_standalone(bind: str, port: int, certs: Mapping[str, tuple[str, str]]) -> Iterator[None]:
    """A TLS server on ``bind:port`` for the duration of the block that offers only the ``acme-tls/1`` ALPN
    protocol and presents, by SNI, ``certs[domain]`` ((cert PEM, key PEM), see :func:`tls_alpn01_certificate`)."""
    by_name: dict[str, ssl.SSLContext] = {}
    with tempfile.TemporaryDirectory(prefix="regctl-tls-alpn-") as tmp:
        for i, (domain, (cert_pem, key_pem)) in enumerate(certs.items()):
            pem = Path(tmp, f"{i}.pem")  # one file, as the registry's listener loads it
            pem.write_text(cert_pem + key_pem)
            by_name[domain.lower()] = context = challenge_context()
            context.load_cert_chain(pem)

    def pick(sock: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> int | None:
        context = by_name.get((server_name or "").lower())
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = context
        return None

    context = challenge_context()
    context.sni_callback = pick
    server = _TLSALPN01Server(listen(bind, port), _TLSALPN01Handler)
    server.context = context
    with _serving(server):
        yield
