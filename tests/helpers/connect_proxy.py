"""An HTTPS (CONNECT) proxy that sends every host name to 127.0.0.1: how clients on this machine reach a
registry by a made-up domain (the name pebble issued for) without /etc/hosts.

The client still does TLS end to end with the name it asked for (SNI, the certificate's name check), so a
client behind it verifies exactly what it would against a real domain. skopeo and Python's urllib take it from
``HTTPS_PROXY``/``ProxyHandler``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
from collections.abc import Iterator

from helpers.threaded import serving_in_thread

_BUFFER = 64 * 1024


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        port = target.rpartition(":")[2]
        if method != "CONNECT" or not port.isdigit():
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(_BUFFER)
            if not data:
                return
            peers[sock].sendall(data)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def connect_proxy() -> Iterator[str]:
    """A running proxy; yields its URL (``http://127.0.0.1:PORT``)."""
    with serving_in_thread(_Server(("127.0.0.1", 0), _Handler), "connect-proxy") as port:
        yield f"http://127.0.0.1:{port}"
