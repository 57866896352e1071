"""Zero-copy blob downloads with os.sendfile.

uvloop does not implement ``loop.sendfile`` (aiohttp then falls back to reading the file into Python), so
once the response headers have left the transport the file is sent straight from the page cache to the
socket by ``os.sendfile`` in a thread, waiting for the socket to drain with ``poll`` when it is full.
Over TLS the bytes must pass through the TLS layer, so the file is copied through the transport instead.
"""

from __future__ import annotations

import asyncio
import os
import select
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

# Each transfer holds a thread while the client reads; a pool of its own keeps slow clients from starving
# the default executor that fsyncs uploads.
_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="sendfile")
_STALL_MS = 120_000


class _Stalled(Exception):
    pass


def _send(out_fd: int, in_fd: int, offset: int, count: int) -> None:
    poller = select.poll()
    poller.register(out_fd, select.POLLOUT)
    while count > 0:
        try:
            sent = os.sendfile(out_fd, in_fd, offset, count)
        except BlockingIOError:
            if not poller.poll(_STALL_MS):
                raise _Stalled from None
            continue
        if sent == 0:
            raise ConnectionResetError("file ended before the announced length")
        offset += sent
        count -= sent


async def send_file(request: web.Request, response: web.StreamResponse, path: str, offset: int,
                    count: int) -> web.StreamResponse:
    """Send ``count`` bytes of ``path`` from ``offset`` as the body of the prepared-to-be ``response``."""
    with open(path, "rb") as f:
        writer = await response.prepare(request)
        if request.method == "HEAD" or count == 0:
            await response.write_eof()
            return response
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        assert writer is not None
        await writer.drain()
        if (sock is None or transport is None or transport.get_write_buffer_size()
                or transport.get_extra_info("ssl_object") is not None):
            await _copy(response, f, offset, count)
            return response
        try:
            await asyncio.get_running_loop().run_in_executor(_POOL, _send, sock.fileno(), f.fileno(), offset,
                                                             count)
        except (_Stalled, OSError):
            transport.close()  # the body is incomplete: the connection cannot be reused
            return response
        await response.write_eof()
        return response


async def _copy(response: web.StreamResponse, f, offset: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    f.seek(offset)
    while count > 0:
        chunk = await loop.run_in_executor(_POOL, f.read, min(count, 1 << 20))
        if not chunk:
            break
        await response.write(chunk)
        count -= len(chunk)
    await response.write_eof()
