"""A socketserver run in a thread for the duration of a ``with`` block."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def serving_in_thread(server: socketserver.BaseServer, name: str | None = None) -> Iterator[int]:
    """Run ``server.serve_forever`` in a daemon thread; yields the port it listens on. Afterwards the server is
    shut down, closed and its thread joined."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
