"""``python -m regctl serve`` with ``http.tls`` on 127.0.0.1: certificate renewal under load, and mutual TLS.

A client thread opens a new verified connection (against the test CA only) for every request while the
certificate is replaced on disk: first by the poll, then half-way (new certificate, old key: the server must
keep the old pair), then with SIGHUP. What is asserted is what a client notices: no request fails, and a new
connection gets the new certificate.
"""

from __future__ import annotations

import http.client
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from helpers.certs import Issued, cert_pem, issue, make_ca
from helpers.client_loop import ClientLoop
from helpers.secure_servers import ServerProcess, ServerSet

# The server polls the files every 2 s; each worker on its own.
RELOAD_TIMEOUT = 20.0


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerSet]:
    started = ServerSet(tmp_path / "servers")
    yield started
    started.stop_all()


def serve(servers: ServerSet, tls: dict, workers: int = 2, wait: bool = True) -> ServerProcess:
    return servers.start("regctl", {"storage": {"inmemory": {}}, "http": {"tls": tls}}, workers=workers, wait=wait)


def client_context(ca: Issued, leaf: Issued | None = None, directory: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=cert_pem(ca.cert).decode())  # the test CA and nothing else
    if leaf is not None and directory is not None:
        leaf.write(directory / "client.crt", directory / "client.key")
        context.load_cert_chain(directory / "client.crt", directory / "client.key")
    return context


def get(port: int, context: ssl.SSLContext) -> tuple[int, int]:
    """GET /v2/ on a new connection; returns (status, serial number of the server certificate)."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", "/v2/")
        response = connection.getresponse()
        response.read()
        assert connection.sock is not None
        der = connection.sock.getpeercert(binary_form=True)
        assert der is not None
        return response.status, x509.load_der_x509_certificate(der).serial_number
    finally:
        connection.close()


def wait_for(loop: ClientLoop[tuple[int, int]], serial: int) -> None:
    """Until the last 20 connections (over both workers) all got the certificate ``serial``."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while not (len(loop.results) >= 20 and all(s == serial for _, s in loop.results[-20:])):
        assert time.monotonic() < deadline, f"certificate {serial} not served; failures: {loop.failures}"
        time.sleep(0.05)


def test_certificate_renewal_under_load(servers: ServerSet, tmp_path: Path) -> None:
    ca = make_ca()
    cert, key = tmp_path / "domain.crt", tmp_path / "domain.key"
    first = issue(ca, "first")
    first.write(cert, key, chain=cert_pem(ca.cert))
    server = serve(servers, {"certificate": str(cert), "key": str(key)})
    context = client_context(ca)
    assert get(server.port, context) == (200, first.serial)

    with ClientLoop(lambda: get(server.port, context)) as loop:
        # 1. Both files replaced: every worker notices by itself.
        second = issue(ca, "second")
        second.write(cert, key, chain=cert_pem(ca.cert))
        wait_for(loop, second.serial)

        # 2. Half-way: a new certificate with the old key. The server keeps serving the second pair.
        third = issue(ca, "third")
        cert.write_bytes(cert_pem(third.cert) + cert_pem(ca.cert))
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while server.output.count("certificate reload failed") < 2:  # both workers tried, and kept theirs
            assert time.monotonic() < deadline, server.output
            time.sleep(0.05)
        seen = len(loop.results)
        time.sleep(0.5)
        assert {s for _, s in loop.results[seen:]} == {second.serial}

        # 3. The key follows, and the operator sends SIGHUP.
        third.write(cert, key, chain=cert_pem(ca.cert))
        server.proc.send_signal(signal.SIGHUP)
        wait_for(loop, third.serial)

    assert loop.failures == []
    assert {status for status, _ in loop.results} == {200}
    assert len(loop.results) > 50
    assert "reload requested, forwarding to workers" in server.output
    assert get(server.port, context) == (200, third.serial)


def test_client_certificates_are_required_with_clientcas(servers: ServerSet, tmp_path: Path) -> None:
    ca = make_ca()
    cert, key, cas = tmp_path / "domain.crt", tmp_path / "domain.key", tmp_path / "clients.pem"
    issue(ca, "server").write(cert, key)
    clients = make_ca("client CA")
    cas.write_bytes(cert_pem(clients.cert))
    server = serve(servers, {"certificate": str(cert), "key": str(key), "clientcas": [str(cas)]}, workers=1)

    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        get(server.port, client_context(ca))
    stranger = issue(make_ca("another CA"), "mallory", client=True)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        get(server.port, client_context(ca, stranger, tmp_path))
    alice = issue(clients, "alice", client=True)
    assert get(server.port, client_context(ca, alice, tmp_path))[0] == 200


def test_unreadable_key_stops_the_server_with_the_key_named(servers: ServerSet, tmp_path: Path) -> None:
    ca = make_ca()
    cert = tmp_path / "domain.crt"
    cert.write_bytes(cert_pem(issue(ca, "server").cert))
    server = serve(servers, {"certificate": str(cert), "key": str(tmp_path / "missing.key")}, wait=False)
    assert server.proc.wait(30) == 1
    assert f"Error: http.tls.key: cannot read {tmp_path / 'missing.key'}: No such file or directory" in server.output
