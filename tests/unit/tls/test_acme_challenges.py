"""Challenge answers: the TLS-ALPN-01 certificate (RFC 8737), its TLS responder, HTTP-01 responder and webroot."""

from __future__ import annotations

import hashlib
import socket
import ssl
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from helpers.servers import free_port

from regctl.tls import challenges

KEY_AUTHORIZATION = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
TOKEN_PATH = "/.well-known/acme-challenge/evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


def test_tls_alpn01_certificate_carries_the_critical_acme_identifier() -> None:
    cert_pem, key_pem = challenges.tls_alpn01_certificate("registry.example.com", KEY_AUTHORIZATION)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    extension = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"))
    assert extension.critical
    # DER: OCTET STRING (0x04), 32 bytes, SHA-256 of the key authorization
    assert extension.value.value == b"\x04\x20" + hashlib.sha256(KEY_AUTHORIZATION.encode()).digest()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["registry.example.com"]
    private = load_pem_private_key(key_pem.encode(), None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.public_key() == cert.public_key()


def _handshake(port: int, server_name: str, alpn: list[str]) -> ssl.SSLSocket:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context.wrap_socket(sock, server_hostname=server_name)


def test_tls_alpn01_responder_presents_the_certificate_by_sni_with_acme_tls_1() -> None:
    certs = {name: challenges.tls_alpn01_certificate(name, KEY_AUTHORIZATION + name)
             for name in ("a.example", "b.example")}
    port = free_port()
    with challenges.tls_alpn01_standalone("127.0.0.1", port, certs):
        for name, (cert_pem, _) in certs.items():
            with _handshake(port, name, ["acme-tls/1"]) as tls:
                assert tls.selected_alpn_protocol() == "acme-tls/1"
                served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
                assert served == x509.load_pem_x509_certificate(cert_pem.encode())
        with pytest.raises(ssl.SSLError):
            _handshake(port, "unknown.example", ["acme-tls/1"]).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_http01_responder_serves_only_the_tokens_while_open() -> None:
    port = free_port()
    with challenges.http01_standalone("127.0.0.1", port, {TOKEN_PATH: KEY_AUTHORIZATION}):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{TOKEN_PATH}", timeout=5) as response:
            assert response.read().decode() == KEY_AUTHORIZATION
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/acme-challenge/other", timeout=5)
        assert missing.value.code == 404
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_http01_responder_on_a_taken_port_raises_oserror() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError), challenges.http01_standalone("127.0.0.1", port, {}):
            pass


def test_webroot_writes_token_files_and_removes_them(tmp_path: Path) -> None:
    directory = tmp_path / "acme-challenge"
    other = tmp_path / "acme-challenge" / "keep-me"
    with challenges.webroot(directory, {TOKEN_PATH: KEY_AUTHORIZATION}):
        token = directory / TOKEN_PATH.rsplit("/", 1)[1]
        assert token.read_text() == KEY_AUTHORIZATION
        assert stat.S_IMODE(token.stat().st_mode) == 0o644
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
        other.write_text("not ours")
    assert sorted(p.name for p in directory.iterdir()) == ["keep-me"]


def test_webroot_removes_token_files_when_the_order_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), challenges.webroot(tmp_path, {TOKEN_PATH: KEY_AUTHORIZATION}):
        raise RuntimeError("validation failed")
    assert list(tmp_path.iterdir()) == []


def test_webroot_refuses_paths_outside_the_challenge_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an HTTP-01 challenge path"), challenges.webroot(
        tmp_path / "dir", {"/.well-known/acme-challenge/../../etc/passwd": "x"}
    ):
        pass
    assert list((tmp_path / "dir").iterdir()) == []


def test_tls_alpn01_webroot_writes_certificate_files_for_the_registry(tmp_path: Path) -> None:
    directory = tmp_path / "acme-challenge"
    certs = {name: challenges.tls_alpn01_certificate(name, KEY_AUTHORIZATION) for name in ("a.example", "b.example")}
    with challenges.tls_alpn01_webroot(directory, certs):
        for name, (cert_pem, key_pem) in certs.items():
            path = challenges.tls_alpn01_path(directory, name)
            assert path == directory / "tls-alpn-01" / f"{name}.pem"
            assert path.read_text() == cert_pem + key_pem
            assert stat.S_IMODE(path.stat().st_mode) == 0o644
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(path)  # what registry.alpn loads: certificate and key in one file
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
        assert stat.S_IMODE((directory / "tls-alpn-01").stat().st_mode) == 0o755
        assert sorted(p.name for p in (directory / "tls-alpn-01").iterdir()) == ["a.example.pem", "b.example.pem"]
    assert list(directory.iterdir()) == []  # the files, and the directory it made


def test_tls_alpn01_webroot_removes_its_files_when_the_order_fails(tmp_path: Path) -> None:
    (tmp_path / "tls-alpn-01").mkdir()
    (tmp_path / "tls-alpn-01" / "keep.pem").write_text("not ours")
    certs = {"a.example": challenges.tls_alpn01_certificate("a.example", KEY_AUTHORIZATION)}
    with pytest.raises(RuntimeError), challenges.tls_alpn01_webroot(tmp_path, certs):
        raise RuntimeError("validation failed")
    assert [p.name for p in (tmp_path / "tls-alpn-01").iterdir()] == ["keep.pem"]


@pytest.mark.parametrize("name", ["../etc/passwd", ".hidden", "a/b.example", "Upper.Example", ""])
def test_tls_alpn01_webroot_refuses_what_is_not_a_domain(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a domain name"), challenges.tls_alpn01_webroot(
        tmp_path / "dir", {name: ("cert", "key")}
    ):
        pass
    assert not (tmp_path / "dir").exists()
