"""TLS-ALPN-01 on the registry's own TLS listener (``registry.alpn``): the ClientHello parser, then the site.

ClientHellos are real ones: Python's ssl client writes its first flight into a ``MemoryBIO``. The site runs an
aiohttp application on loopback, under asyncio and under uvloop, with blocking clients in threads: normal
clients get the registry's certificate exactly as from ``web.SockSite``; a validation (SNI + only
``acme-tls/1``) gets the challenge certificate the webroot responder wrote. The real server with pebble
validating against it is ``tests/integration/test_acme_server.py``.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop
from aiohttp import web
from cryptography import x509
from helpers.certs import Issued, cert_pem, issue, make_ca
from helpers.secure import tls_get

from regctl.registry import alpn
from regctl.registry.alpn import INCOMPLETE, AcmeTLSSite, ClientHello, challenge_name, parse_client_hello
from regctl.tls import challenges
from regctl.tls.challenge_spec import CHALLENGE_SUBDIR

DOMAIN = "registry.example.com"
KEY_AUTHORIZATION = "token.thumbprint"


def client_hello(server_name: str | None = None, alpn_protocols: list[str] | None = None,
                 maximum: ssl.TLSVersion | None = None) -> bytes:
    """The first bytes Python's ssl client sends."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn_protocols:
        context.set_alpn_protocols(alpn_protocols)
    if maximum is not None:
        context.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


# -- the parser -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("server_name", "protocols", "maximum", "expected", "challenge"),
    [
        (DOMAIN, ["acme-tls/1"], None, ClientHello(DOMAIN, ("acme-tls/1",)), DOMAIN),
        ("Registry.Example.COM", ["acme-tls/1"], None, ClientHello(DOMAIN, ("acme-tls/1",)), DOMAIN),
        (DOMAIN, ["acme-tls/1"], ssl.TLSVersion.TLSv1_2, ClientHello(DOMAIN, ("acme-tls/1",)), DOMAIN),
        (DOMAIN, ["h2", "http/1.1"], None, ClientHello(DOMAIN, ("h2", "http/1.1")), None),
        # acme-tls/1 among others: a real client, never a validation (RFC 8737 §3)
        (DOMAIN, ["acme-tls/1", "http/1.1"], None, ClientHello(DOMAIN, ("acme-tls/1", "http/1.1")), None),
        (DOMAIN, None, None, ClientHello(DOMAIN, None), None),
        (None, ["acme-tls/1"], None, ClientHello(None, ("acme-tls/1",)), None),  # no SNI: nothing to look up
        (None, None, None, ClientHello(None, None), None),
        ("127.0.0.1", None, None, ClientHello(None, None), None),  # ssl sends no SNI for an IP address
    ],
)
def test_parses_real_client_hellos(server_name, protocols, maximum, expected: ClientHello, challenge) -> None:
    data = client_hello(server_name, protocols, maximum)
    assert alpn.first_record_size(data) == len(data)
    assert parse_client_hello(data) == expected
    assert challenge_name(expected) == challenge
    # Whatever follows the first record (the client's next flight) is not looked at.
    assert parse_client_hello(data + b"\x17\x03\x03\x00\x05hello") == expected


def test_every_truncated_record_asks_for_more() -> None:
    data = client_hello(DOMAIN, ["acme-tls/1"])
    for size in range(len(data)):
        assert parse_client_hello(data[:size]) == INCOMPLETE, size
    assert alpn.first_record_size(data[:4]) == 5
    assert alpn.first_record_size(data[:5]) == len(data)


@pytest.mark.parametrize(
    "data",
    [
        b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n",  # plain HTTP to the TLS port
        b"\x80\x2e\x01\x00\x02",  # an SSLv2-compatible hello
        b"\x00",
        b"\x17\x03\x03\x00\x10" + bytes(16),  # application data, not a handshake
        b"\x16\x04\x03\x00\x10" + bytes(16),  # not TLS's major version
        b"\x16\x03\x01\x00\x00",  # an empty record
        b"\x16\x03\x01\x40\x01",  # longer than a TLS record may be (2^14)
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",  # a ServerHello
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03",  # a ClientHello cut short
    ],
)
def test_anything_else_is_not_a_client_hello(data: bytes) -> None:
    assert parse_client_hello(data) is None


def test_a_client_hello_longer_than_its_record_is_not_read() -> None:
    data = bytearray(client_hello(DOMAIN, ["acme-tls/1"]))
    data[6:9] = (int.from_bytes(data[6:9], "big") + 100).to_bytes(3, "big")  # the handshake says 100 more
    assert parse_client_hello(bytes(data)) is None


def test_repeated_extensions_are_malformed() -> None:
    data = bytearray(client_hello(DOMAIN, ["acme-tls/1"]))
    # Append a second ALPN extension to the extensions block, fixing up every length around it.
    extra = b"\x00\x10\x00\x0d\x00\x0b\x0aacme-tls/1"
    data += extra
    for offset, size in ((3, 2), (6, 3)):
        data[offset:offset + size] = (int.from_bytes(data[offset:offset + size], "big") + len(extra)).to_bytes(
            size, "big")
    # The extensions' own length sits after the fixed fields, the session id, the suites and compression.
    position = 5 + 4 + 2 + 32
    position += 1 + data[position]
    position += 2 + int.from_bytes(data[position:position + 2], "big")
    position += 1 + data[position]
    data[position:position + 2] = (int.from_bytes(data[position:position + 2], "big") + len(extra)).to_bytes(2, "big")
    assert parse_client_hello(bytes(data)) is None
    data[-len(extra) + 1] = 0x11  # the same bytes as another (unknown) extension type: fine
    assert parse_client_hello(bytes(data)) == ClientHello(DOMAIN, ("acme-tls/1",))


def test_garbage_never_raises() -> None:
    rng = random.Random(8737)
    real = client_hello(DOMAIN, ["acme-tls/1"])
    for _ in range(3000):
        mutated = bytearray(real)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(5, len(mutated))] = rng.randrange(256)
        result = parse_client_hello(bytes(mutated))
        assert result is None or isinstance(result, ClientHello)
        body = rng.randbytes(rng.randint(1, 600))
        header = b"\x16\x03\x01" + len(body).to_bytes(2, "big")
        result = parse_client_hello(header + b"\x01" + body)
        assert result is None or isinstance(result, ClientHello)


# -- the site ---------------------------------------------------------------------------------------------------
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[None]], None]:
    """Run a coroutine to completion on a new event loop of the parametrised kind."""

    def runner(coroutine: Awaitable[None]) -> None:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as loop_runner:
            loop_runner.run(coroutine)  # type: ignore[arg-type]

    return runner


@pytest.fixture
def ca() -> Issued:
    return make_ca("alpn site test CA")


@pytest.fixture
def server_context(tmp_path: Path, ca: Issued) -> ssl.SSLContext:
    leaf = issue(ca, DOMAIN, hosts=(DOMAIN, "127.0.0.1"))
    leaf.write(tmp_path / "server.crt", tmp_path / "server.key", chain=cert_pem(ca.cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    return context


class Site:
    """An aiohttp app (``GET /`` → "ok", ``GET /slow`` after 0.5 s) behind an AcmeTLSSite on 127.0.0.1."""

    def __init__(self, context: ssl.SSLContext, challenge_dir: Path) -> None:
        self.context = context
        self.challenge_dir = challenge_dir

    async def __aenter__(self) -> Site:
        async def ok(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def slow(_: web.Request) -> web.Response:
            await asyncio.sleep(0.5)
            return web.Response(text="slow")

        app = web.Application()
        app.router.add_get("/", ok)
        app.router.add_get("/slow", slow)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5)
        await self.runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.site = AcmeTLSSite(self.runner, sock, ssl_context=self.context,
                                challenge_dir=self.challenge_dir / CHALLENGE_SUBDIR)
        await self.site.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def handshake(port: int, server_name: str | None, protocols: list[str] | None,
              split: float | None = None) -> tuple[x509.Certificate, str | None]:
    """A TLS handshake over a new connection; (the server's certificate, the ALPN protocol chosen). ``split``:
    send the ClientHello in two parts that many seconds apart."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if protocols:
        context.set_alpn_protocols(protocols)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        first = True
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            data = outgoing.read()
            if first and split is not None:
                sock.sendall(data[:50])
                time.sleep(split)
                data = data[50:]
            first = False
            sock.sendall(data)
            if done:
                break
            received = sock.recv(65536)
            if not received:
                raise ConnectionError("closed during the handshake")
            incoming.write(received)
    der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der), tls.selected_alpn_protocol()


def https_get(port: int, path: str = "/", ca: Issued | None = None) -> tuple[int, bytes]:
    context = ssl.create_default_context(cadata=cert_pem(ca.cert).decode()) if ca else ssl.create_default_context()
    status, body, _ = tls_get(port, context, DOMAIN, path)
    return status, body


def write_challenge(directory: Path, domain: str = DOMAIN) -> x509.Certificate:
    cert_pem_text, key_pem_text = challenges.tls_alpn01_certificate(domain, KEY_AUTHORIZATION)
    target = challenges.tls_alpn01_path(directory, domain)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(cert_pem_text + key_pem_text)
    return x509.load_pem_x509_certificate(cert_pem_text.encode())


def test_normal_clients_are_served_as_before(run, server_context, ca: Issued, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Site(server_context, tmp_path) as site:
            assert site.site.name == f"https://127.0.0.1:{site.port}"
            assert await asyncio.to_thread(https_get, site.port, "/", ca) == (200, b"ok")
            served, chosen = await asyncio.to_thread(handshake, site.port, DOMAIN, ["h2", "http/1.1"])
            assert served.subject.rfc4514_string() == f"CN={DOMAIN}" and chosen is None
            # A validation for a name with no challenge file gets the registry's certificate (and no ALPN).
            served, chosen = await asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1"])
            assert served.subject.rfc4514_string() == f"CN={DOMAIN}" and chosen is None

    run(scenario())


def test_a_validation_gets_the_challenge_certificate(run, server_context, ca: Issued, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Site(server_context, tmp_path) as site:
            expected = write_challenge(tmp_path)
            served, chosen = await asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1"])
            assert (served, chosen) == (expected, "acme-tls/1")
            # Sent in two parts: the site waits for the whole record.
            served, chosen = await asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1"], 0.3)
            assert (served, chosen) == (expected, "acme-tls/1")
            # Only a validation gets it: acme-tls/1 next to another protocol, or another name, does not.
            served, _ = await asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1", "http/1.1"])
            assert served != expected
            served, _ = await asyncio.to_thread(handshake, site.port, "other.example.com", ["acme-tls/1"])
            assert served != expected
            assert await asyncio.to_thread(https_get, site.port, "/", ca) == (200, b"ok")
            # A new file for the same name (the next order) replaces the cached context.
            os.utime(challenges.tls_alpn01_path(tmp_path, DOMAIN), ns=(0, 0))
            newer = write_challenge(tmp_path)
            served, _ = await asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1"])
            assert served == newer != expected
            # Removed once the order is done: the registry's certificate again.
            challenges.tls_alpn01_path(tmp_path, DOMAIN).unlink()
            served, chosen = await asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1"])
            assert served.subject.rfc4514_string() == f"CN={DOMAIN}" and chosen is None

    run(scenario())


def test_an_unusable_challenge_file_falls_back(run, server_context, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with Site(server_context, tmp_path) as site:
            target = challenges.tls_alpn01_path(tmp_path, DOMAIN)
            target.parent.mkdir(parents=True)
            target.write_text("not a certificate\n")
            served, chosen = await asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1"])
            assert served.subject.rfc4514_string() == f"CN={DOMAIN}" and chosen is None

    run(scenario())
    assert "tls-alpn-01 challenge file unusable" in caplog.text


def test_silent_or_garbage_clients_fall_through(run, server_context, ca: Issued, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alpn, "PEEK_TIMEOUT", 0.3)

    def silent_then_tls(port: int) -> int:
        """Connect, say nothing past the peek timeout, then do a normal handshake on that connection."""
        context = ssl.create_default_context(cadata=cert_pem(ca.cert).decode())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            time.sleep(0.6)
            with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode())
                return int(tls.recv(65536).split()[1])

    def plain_http(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: registry\r\n\r\n")
            received = b""
            while chunk := raw.recv(65536):
                received += chunk
            return received

    async def scenario() -> None:
        async with Site(server_context, tmp_path) as site:
            assert await asyncio.to_thread(silent_then_tls, site.port) == 200
            # Not TLS: the TLS layer refuses it as web.SockSite's does (an alert, then the connection closes).
            answer = await asyncio.to_thread(plain_http, site.port)
            assert answer == b"" or answer[0] == 0x15
            assert await asyncio.to_thread(https_get, site.port, "/", ca) == (200, b"ok")

    run(scenario())


def test_stop_drains_requests_in_flight_and_closes_the_port(run, server_context, ca: Issued, tmp_path: Path) -> None:
    results: list[object] = []

    async def scenario() -> None:
        site = Site(server_context, tmp_path)
        await site.__aenter__()
        slow = asyncio.create_task(asyncio.to_thread(https_get, site.port, "/slow", ca))
        idle = socket.create_connection(("127.0.0.1", site.port))  # accepted, no ClientHello yet
        await asyncio.sleep(0.2)  # both are in
        await site.__aexit__()
        results.append(await slow)
        idle.settimeout(5)
        results.append(idle.recv(1))  # closed by stop()
        idle.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", site.port), timeout=5).close()

    run(scenario())
    assert results == [(200, b"slow"), b""]


def test_many_connections_at_once(run, server_context, ca: Issued, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Site(server_context, tmp_path) as site:
            expected = write_challenge(tmp_path)
            gets = [asyncio.to_thread(https_get, site.port, "/", ca) for _ in range(30)]
            checks = [asyncio.to_thread(handshake, site.port, DOMAIN, ["acme-tls/1"]) for _ in range(10)]
            results = await asyncio.gather(*gets, *checks)
            assert results[:30] == [(200, b"ok")] * 30
            assert results[30:] == [(expected, "acme-tls/1")] * 10

    run(scenario())
    assert threading.active_count() < 50
