"""``http.tls`` in a worker: the context built from the files, errors naming the key, and reloading.

Handshakes run in memory (``ssl.MemoryBIO``) between the server's listening context and a client that
verifies against the test CA: the certificate a client sees is what is asserted. The real server, with
connections over loopback while the files change, is ``tests/integration/test_tls_reload.py``.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from regctl.config.server import TLS
from regctl.errors import ConfigError
from regctl.registry.tls import ServerTLS, build_context
from tests.helpers.certs import Issued, cert_pem, issue, key_pem, make_ca, signing_key


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> x509.Certificate:
    """Complete a TLS handshake in memory; returns the server certificate the client got."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    s = server.wrap_bio(server_in, server_out, server_side=True)
    c = client.wrap_bio(client_in, client_out, server_hostname="127.0.0.1")
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", c), ("server", s)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            # TLS 1.3 sends the server's verdict on a client certificate after the client is done.
            c.write(b"x")
            server_in.write(client_out.read())
            s.read(1)
            der = c.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der)
    raise AssertionError("handshake did not finish")


@pytest.fixture
def ca() -> Issued:
    return make_ca()


@pytest.fixture
def paths(tmp_path: Path, ca: Issued) -> dict[str, Path]:
    paths = {"cert": tmp_path / "server.crt", "key": tmp_path / "server.key", "ca": tmp_path / "ca.pem"}
    issue(ca, "server one").write(paths["cert"], paths["key"], chain=cert_pem(ca.cert))
    paths["ca"].write_bytes(cert_pem(ca.cert))
    return paths


def tls(paths: dict[str, Path], **extra) -> TLS:
    return TLS(certificate=str(paths["cert"]), key=str(paths["key"]), **extra)


def client(ca: Issued, leaf: Issued | None = None, tmp_path: Path | None = None,
           maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=cert_pem(ca.cert).decode())
    if maximum is not None:
        context.maximum_version = maximum
    if leaf is not None and tmp_path is not None:
        leaf.write(tmp_path / "client.crt", tmp_path / "client.key")
        context.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    return context


def test_serves_the_certificate_with_its_chain(paths, ca) -> None:
    served = handshake(build_context(tls(paths)), client(ca))
    assert served.subject.rfc4514_string() == "CN=server one"


def test_minimum_version(paths, ca) -> None:
    handshake(build_context(tls(paths)), client(ca, maximum=ssl.TLSVersion.TLSv1_2))
    with pytest.raises(ssl.SSLError):
        handshake(build_context(tls(paths, minimumtls="tls1.3")), client(ca, maximum=ssl.TLSVersion.TLSv1_2))
    assert build_context(tls(paths)).minimum_version == ssl.TLSVersion.TLSv1_2  # the default


def test_client_certificates_when_clientcas_are_given(paths, ca, tmp_path) -> None:
    server = build_context(tls(paths, clientcas=[str(paths["ca"])]))
    with pytest.raises(ssl.SSLError):
        handshake(server, client(ca))
    handshake(server, client(ca, issue(ca, "client", client=True), tmp_path))
    stranger = make_ca("another CA")
    with pytest.raises(ssl.SSLError):
        handshake(server, client(ca, issue(stranger, "client", client=True), tmp_path))


@pytest.mark.parametrize(("damage", "message"), [
    ("no cert", "http.tls.certificate: cannot read {cert}: No such file or directory"),
    ("no key", "http.tls.key: cannot read {key}: No such file or directory"),
    ("cert not PEM", "http.tls.certificate: {cert}: no PEM certificate in it"),
    ("key not PEM", "http.tls.key: {key}: not an unencrypted PEM private key"),
    ("encrypted key", "http.tls.key: {key}: not an unencrypted PEM private key"),
    ("other key", "http.tls.key: {key} does not match the first certificate in {cert}"),
    ("chain first", "http.tls.key: {key} does not match the first certificate in {cert}"),
    ("no clientca", "http.tls.clientcas.0: cannot read {ca}: No such file or directory"),
    ("clientca not PEM", "http.tls.clientcas.0: {ca}: no PEM certificate in it"),
])
def test_unusable_files_name_the_key(paths, ca, damage, message) -> None:
    if damage == "no cert":
        paths["cert"].unlink()
    elif damage == "no key":
        paths["key"].unlink()
    elif damage == "cert not PEM":
        paths["cert"].write_text("hello")
    elif damage == "key not PEM":
        paths["key"].write_text("hello")
    elif damage == "encrypted key":
        paths["key"].write_bytes(signing_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"x")))
    elif damage == "other key":
        paths["key"].write_bytes(key_pem(signing_key()))
    elif damage == "chain first":
        paths["cert"].write_bytes(cert_pem(ca.cert) + paths["cert"].read_bytes())
    elif damage == "no clientca":
        paths["ca"].unlink()
    else:
        paths["ca"].write_text("hello")
    with pytest.raises(ConfigError) as caught:
        build_context(tls(paths, clientcas=[str(paths["ca"])]))
    assert str(caught.value) == message.format(cert=paths["cert"], key=paths["key"], ca=paths["ca"])


def test_new_files_are_served_once_they_load(paths, ca, caplog) -> None:
    server = ServerTLS(tls(paths))
    assert handshake(server.context, client(ca)).subject.rfc4514_string() == "CN=server one"
    assert not server.reload_if_changed()  # nothing changed: nothing rebuilt

    issue(ca, "server two").write(paths["cert"], paths["key"])
    assert server.reload_if_changed()
    assert handshake(server.context, client(ca)).subject.rfc4514_string() == "CN=server two"

    # Half-way through a renewal (new certificate, old key): the current certificate stays, an error is logged.
    three = issue(ca, "server three")
    paths["cert"].write_bytes(cert_pem(three.cert))
    with caplog.at_level(logging.ERROR, logger="regctl.tls"):
        assert not server.reload_if_changed()
    assert [r.getMessage() for r in caplog.records] == ["certificate reload failed, keeping the current one"]
    assert handshake(server.context, client(ca)).subject.rfc4514_string() == "CN=server two"
    assert not server.reload_if_changed()  # the failed attempt is not repeated until a file changes again

    paths["key"].write_bytes(key_pem(three.key))
    assert server.reload_if_changed()
    assert handshake(server.context, client(ca)).subject.rfc4514_string() == "CN=server three"


def test_reload_on_request_rereads_unchanged_names(paths, ca) -> None:
    # SIGHUP: rebuild whatever the stamps say (a file replaced within the same second keeps its mtime on some
    # filesystems).
    server = ServerTLS(tls(paths))
    issue(ca, "server two").write(paths["cert"], paths["key"])
    assert server.reload()
    assert handshake(server.context, client(ca)).subject.rfc4514_string() == "CN=server two"


def test_startup_fails_on_unusable_files(paths) -> None:
    paths["key"].unlink()
    with pytest.raises(ConfigError):
        ServerTLS(tls(paths))
