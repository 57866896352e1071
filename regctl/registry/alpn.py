"""TLS-ALPN-01 (RFC 8737) on the registry's own TLS listener, so a renewal needs no port of its own and no stop.

A validation server connects to port 443 of the domain, names the domain in SNI and offers only the ALPN
protocol ``acme-tls/1``; it expects a self-signed certificate carrying the key authorization. Python's ssl
module picks the certificate (``sni_callback``) before it can see the client's ALPN list, so
:class:`AcmeTLSSite` reads the ClientHello first: it accepts each connection itself, peeks (``MSG_PEEK``,
nothing is consumed) at the first TLS record, and hands the socket to the event loop with the context it
chose (``loop.connect_accepted_socket``):

- the challenge context, when ``acme-tls/1`` is the only protocol offered (RFC 8737 §3: the validation
  server offers nothing else, so no real client is ever sent there) and the webroot responder wrote
  ``<challengedir>/tls-alpn-01/<server name>.pem`` (the certificate and its key; see
  ``regctl.tls.challenges.tls_alpn01_webroot``); the connection is closed once the handshake is done;
- the registry's own context (``registry.tls.ServerTLS``, with its SNI switch and reloads) for everything
  else: other clients, a record that is not a ClientHello, garbage, or nothing within ``PEEK_TIMEOUT``.
  Those go on exactly as they would from ``web.SockSite``.

The server uses this site only when ``acme`` says ``challenge: tls-alpn-01`` with ``responder: webroot``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from aiohttp import web
from yarl import URL

from regctl.tls import DNS_NAME_RE
from regctl.tls.challenge_spec import ALPN_PROTOCOL, challenge_context

log = logging.getLogger("regctl.acme")

# The first record's header is 5 bytes; TLS plaintext records carry at most 2^14 bytes (RFC 8446 §5.1).
RECORD_HEADER = 5
MAX_RECORD = RECORD_HEADER + (1 << 14)
# How long a new connection may take to send its ClientHello before it is handed over as it is.
PEEK_TIMEOUT = 5.0
# The validation server only needs the handshake.
CHALLENGE_HANDSHAKE_TIMEOUT = 10.0
# Without SO_RCVLOWAT, how often a partly received ClientHello is looked at again.
_POLL_INTERVAL = 0.01
# After the process runs out of file descriptors, how long accepting pauses (asyncio's own delay).
_ACCEPT_RETRY_DELAY = 1.0
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

INCOMPLETE: Final = "incomplete"
_HANDSHAKE, _CLIENT_HELLO = 0x16, 0x01
_EXT_SERVER_NAME, _EXT_ALPN = 0, 16
_HOST_NAME = 0


@dataclass(frozen=True)
class ClientHello:
    """What the registry needs from a ClientHello: the SNI host name and the ALPN protocols offered."""

    server_name: str | None  # None: no server_name extension, or no host_name in it
    alpn_protocols: tuple[str, ...] | None  # None: no ALPN extension


class _Malformed(Exception):
    pass


class _Reader:
    """Reads big-endian integers and length-prefixed vectors from a buffer, raising _Malformed past its end."""

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = memoryview(data)
        self._pos = 0

    @property
    def left(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> memoryview:
        if n > self.left:
            raise _Malformed
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Reader:
        return _Reader(self.take(self.number(length_size)))

    def rest(self) -> bytes:
        return bytes(self.take(self.left))


def first_record_size(data: bytes) -> int | None:
    """How many bytes the first TLS record takes (header included) once ``data`` holds its 5-byte header (5
    before that); None when ``data`` cannot start a TLS handshake record (a plain-HTTP request, say)."""
    if (len(data) > 0 and data[0] != _HANDSHAKE) or (len(data) > 1 and data[1] != 3):
        return None
    if len(data) < RECORD_HEADER:
        return RECORD_HEADER
    length = int.from_bytes(data[3:5], "big")
    if not 0 < length <= MAX_RECORD - RECORD_HEADER:
        return None
    return RECORD_HEADER + length


def parse_client_hello(data: bytes) -> ClientHello | Literal["incomplete"] | None:
    """The ClientHello in the first TLS record of ``data`` (the first bytes a client sent, extra bytes
    ignored); :data:`INCOMPLETE` while ``data`` is shorter than that record; None when it is not a
    ClientHello or is malformed, or when the ClientHello does not fit in the first record. Never raises."""
    size = first_record_size(data)
    if size is None:
        return None
    if len(data) < size:
        return INCOMPLETE
    try:
        return _client_hello(_Reader(memoryview(data)[RECORD_HEADER:size]))
    except _Malformed:
        return None


def _client_hello(record: _Reader) -> ClientHello:
    if record.number(1) != _CLIENT_HELLO:
        raise _Malformed
    hello = record.vector(3)  # a ClientHello longer than the record (fragmented) is not read
    hello.take(2 + 32)  # legacy_version, random
    if hello.vector(1).left > 32:  # legacy_session_id
        raise _Malformed
    suites = hello.vector(2)
    if suites.left < 2 or suites.left % 2:
        raise _Malformed
    if hello.vector(1).left < 1:  # legacy_compression_methods
        raise _Malformed
    if hello.left == 0:  # no extensions at all (TLS 1.2 allows that)
        return ClientHello(None, None)
    extensions = hello.vector(2)
    seen: set[int] = set()
    server_name: str | None = None
    alpn: tuple[str, ...] | None = None
    while extensions.left:
        kind, body = extensions.number(2), extensions.vector(2)
        if kind in seen:  # RFC 8446 §4.2: at most one of each
            raise _Malformed
        seen.add(kind)
        if kind == _EXT_SERVER_NAME:
            server_name = _server_name(body)
        elif kind == _EXT_ALPN:
            alpn = _alpn(body)
    return ClientHello(server_name, alpn)


def _server_name(body: _Reader) -> str | None:
    """RFC 6066 §3: a list of (name_type, name); the host_name entry, as ASCII lower case."""
    names = body.vector(2)
    found = None
    while names.left:
        kind, name = names.number(1), names.vector(2).rest()
        if kind == _HOST_NAME and found is None:
            try:
                found = name.decode("ascii").lower().rstrip(".")
            except UnicodeDecodeError:
                raise _Malformed from None
    return found


def _alpn(body: _Reader) -> tuple[str, ...]:
    """RFC 7301 §3.1: a non-empty list of non-empty protocol names."""
    names = body.vector(2)
    protocols = []
    while names.left:
        name = names.vector(1).rest()
        if not name:
            raise _Malformed
        protocols.append(name.decode("latin-1"))
    if not protocols:
        raise _Malformed
    return tuple(protocols)


def challenge_name(hello: ClientHello) -> str | None:
    """The name a TLS-ALPN-01 validation asks for (``acme-tls/1`` the only protocol offered, a DNS name in SNI),
    or None when ``hello`` is not one."""
    if hello.alpn_protocols != (ALPN_PROTOCOL,) or hello.server_name is None:
        return None
    return hello.server_name if DNS_NAME_RE.fullmatch(hello.server_name) else None


# -- challenge certificates -----------------------------------------------------------------------------------
class ChallengeCertificates:
    """SSL contexts for the challenge files in ``directory`` (``<name>.pem``: certificate and key), each
    offering only ``acme-tls/1``; a context is kept until its file changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, tuple[tuple[int, int, int], ssl.SSLContext]] = {}

    def context(self, server_name: str) -> ssl.SSLContext | None:
        """The context for ``server_name`` (a lower-case DNS name), or None when there is no usable file."""
        path = self.directory / f"{server_name}.pem"
        try:
            st = os.stat(path)
        except OSError:
            self._cache.pop(server_name, None)
            return None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache.get(server_name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        context = challenge_context()
        try:
            # A few hundred bytes on a local disk: reading inline is cheaper than a thread hop.
            context.load_cert_chain(path)
        except (OSError, ssl.SSLError) as exc:  # removed meanwhile, unreadable, or not a certificate and key
            log.warning("tls-alpn-01 challenge file unusable", extra={"path": str(path), "error": str(exc)})
            return None
        self._cache[server_name] = (stamp, context)
        return context


class _Answered(asyncio.Protocol):
    """A validation connection: the handshake presented the certificate, which is all it asks (RFC 8737 §3)."""

    def __init__(self, server_name: str) -> None:
        self._server_name = server_name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        log.info("tls-alpn-01 challenge answered", extra={"server_name": self._server_name, "peer": str(peer)})
        transport.close()


# -- the site -------------------------------------------------------------------------------------------------
class AcmeTLSSite(web.BaseSite):
    """``web.SockSite`` for a TLS listening socket, answering TLS-ALPN-01 from ``challenge_dir`` too.

    ``ssl_context`` is the registry's (required). ``stop`` closes the listening socket and the connections
    whose ClientHello is still awaited; connections already handed over drain with the runner as usual.
    """

    __slots__ = ("_challenges", "_listening", "_name", "_peeking", "_resume", "_sock", "_tasks")

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext,
        challenge_dir: Path,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._name = str(URL.build(scheme="https", host=host, port=port))
        self._challenges = ChallengeCertificates(challenge_dir)
        self._peeking: set[asyncio.Task[None]] = set()  # connections whose ClientHello is awaited
        self._tasks: set[asyncio.Task[None]] = set()  # every connection's, until its handshake is done
        self._resume: asyncio.TimerHandle | None = None
        self._listening = False

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        self._sock.setblocking(False)
        self._sock.listen(self._backlog)
        self._listening = True
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._accept)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._listening:
            self._listening = False
            loop.remove_reader(self._sock.fileno())
            if self._resume is not None:
                self._resume.cancel()
            self._sock.close()
        peeking = list(self._peeking)
        for task in peeking:
            task.cancel()
        await asyncio.gather(*peeking, return_exceptions=True)
        await super().stop()

    def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self._backlog):  # as asyncio's own accept loop: a bounded batch per wakeup
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client gave up while queued
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                log.error("cannot accept connections, pausing", extra={"error": os.strerror(exc.errno or 0)})
                loop.remove_reader(self._sock.fileno())
                self._resume = loop.call_later(_ACCEPT_RETRY_DELAY, self._resume_accepting)
                return
            conn.setblocking(False)
            task = loop.create_task(self._handle(conn))
            self._peeking.add(task)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _resume_accepting(self) -> None:
        self._resume = None
        if self._listening:
            asyncio.get_running_loop().add_reader(self._sock.fileno(), self._accept)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._peeking.discard(task)
        self._tasks.discard(task)

    async def _handle(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            hello = await _peek_client_hello(loop, conn)
        except BaseException:  # cancelled by stop()
            conn.close()
            raise
        task = asyncio.current_task()
        assert task is not None
        self._peeking.discard(task)
        name = challenge_name(hello) if hello is not None else None
        challenge = self._challenges.context(name) if name is not None else None
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio's own transports do
        try:
            if challenge is not None:
                assert name is not None
                await loop.connect_accepted_socket(
                    lambda: _Answered(name), conn, ssl=challenge, ssl_handshake_timeout=CHALLENGE_HANDSHAKE_TIMEOUT
                )
            else:
                server = self._runner.server
                assert server is not None and self._ssl_context is not None
                await loop.connect_accepted_socket(server, conn, ssl=self._ssl_context)
        except (OSError, TimeoutError) as exc:  # a failed handshake: the loop has closed the connection
            log.debug("tls handshake failed", extra={"error": str(exc) or type(exc).__name__})


async def _peek_client_hello(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> ClientHello | None:
    """The ClientHello in the first record ``conn`` receives, left unread; None when the first bytes are not
    one, or the record is not all there within PEEK_TIMEOUT (the connection is then served as it is)."""
    deadline = loop.time() + PEEK_TIMEOUT
    try:
        while True:
            try:
                data: bytes | None = conn.recv(MAX_RECORD, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:  # reset already: the normal path reports it as it always did
                return None
            if data is not None:
                if not data:  # closed before sending anything
                    return None
                hello = parse_client_hello(data)
                if hello != INCOMPLETE:
                    return hello if isinstance(hello, ClientHello) else None
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            # With part of the record in, the socket stays readable: SO_RCVLOWAT makes it readable only once
            # the whole record is (or the peer closed). Without it, poll.
            if data is None or _set_lowat(conn, first_record_size(data) or RECORD_HEADER):
                try:
                    await _readable(loop, conn, remaining)
                except TimeoutError:
                    return None
            else:
                await asyncio.sleep(min(remaining, _POLL_INTERVAL))
    finally:
        _set_lowat(conn, 1)


def _set_lowat(conn: socket.socket, size: int) -> bool:
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, size)
    except OSError:
        return False
    return True


async def _readable(loop: asyncio.AbstractEventLoop, conn: socket.socket, timeout: float) -> None:
    """Until ``conn`` is readable; TimeoutError after ``timeout`` seconds."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    fd = conn.fileno()
    loop.add_reader(fd, wake)
    try:
        async with asyncio.timeout(timeout):
            await ready
    finally:
        loop.remove_reader(fd)
