"""How regctl asks its own server whether it answers: http or https (unverified), and mutual TLS."""

from __future__ import annotations

import http.server
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import pki
from helpers.threaded import serving_in_thread

from regctl.config.server import ServerConfig
from regctl.deploy.init import build_config
from regctl.deploy.runtime import (
    CLIENT_CERTIFICATE_REQUIRED,
    healthy,
    http_status,
    local_url,
    registry_url,
    server_url,
)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/" else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(
    tmp_path: Path, *, client_ca: pki.Issued | None = None, maximum: ssl.TLSVersion | None = None
) -> Iterator[str]:
    ca = pki.root()
    leaf = pki.leaf(ca, "registry.test")  # not 127.0.0.1: the probe must not verify names
    cert = pki.write(tmp_path / "server.crt", leaf.certificate_pem)
    key = pki.write(tmp_path / "server.key", leaf.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if maximum is not None:
        context.maximum_version = maximum
    if client_ca is not None:
        context.load_verify_locations(cadata=client_ca.certificate_pem)
        context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving_in_thread(server) as port:
        yield f"https://127.0.0.1:{port}"


@pytest.fixture
def https(tmp_path: Path) -> Iterator[str]:
    yield from serve(tmp_path)


def test_https_is_asked_without_verifying(https: str) -> None:
    assert http_status(f"{https}/") == 200
    assert http_status(f"{https}/v2/") == 401
    assert healthy(401)


def test_plain_http_to_a_tls_port_gets_nothing(https: str) -> None:
    assert http_status(https.replace("https:", "http:") + "/", timeout=1) == 0


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_mutual_tls_answers_the_handshake(tmp_path: Path, maximum: ssl.TLSVersion) -> None:
    for url in serve(tmp_path, client_ca=pki.root("Clients CA"), maximum=maximum):
        assert http_status(f"{url}/", timeout=1) == 0  # a GET without a client certificate gets nothing
        assert http_status(f"{url}/", client_certificate_required=True) == CLIENT_CERTIFICATE_REQUIRED
        assert healthy(CLIENT_CERTIFICATE_REQUIRED)


@pytest.mark.parametrize("mutual", [False, True])
def test_nothing_listening(mutual: bool) -> None:
    assert http_status("https://127.0.0.1:9/", timeout=1, client_certificate_required=mutual) == 0
    assert not healthy(0)


def test_plain_http_ignores_the_mutual_flag(https: str) -> None:
    assert http_status(https.replace("https:", "http:") + "/", timeout=1, client_certificate_required=True) == 0


def test_urls_follow_tls_mode() -> None:
    plain = build_config({"host": "registry.test", "port": 5001})
    assert (registry_url(plain), local_url(plain)) == ("http://registry.test:5001", "http://127.0.0.1:5001")
    tls = build_config({"host": "::1", "bind": "::", "tls.mode": "selfsigned"})
    assert (registry_url(tls), local_url(tls)) == ("https://[::1]:5000", "https://[::1]:5000")


@pytest.mark.parametrize(
    ("addr", "tls", "url"),
    [
        (":5000", False, "http://127.0.0.1:5000"),
        ("0.0.0.0:5001", True, "https://127.0.0.1:5001"),
        ("[::]:5000", True, "https://[::1]:5000"),
        ("[::1]:15246", True, "https://[::1]:15246"),
        ("10.0.0.5:443", False, "http://10.0.0.5:443"),
    ],
)
def test_server_url(addr: str, tls: bool, url: str) -> None:
    http = {"addr": addr, **({"tls": {"certificate": "c", "key": "k"}} if tls else {})}
    assert server_url(ServerConfig.model_validate({"http": http})) == url
