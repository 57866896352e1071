"""Zero-copy blob downloads with os.sendfile.

uvloop does not implement ``loop.sendfile`` (aiohttp then falls back to reading the file into Python), so
once the response headers have left the transport the file is sent straight from the page cache to the
socket by ``os.sendfile`` in a thread, waiting for the socket to drain with ``poll`` when it is full.
Over TLS the bytes must pass through the TLS layer in the event loop, so the file is copied through the
transport instead: read in the loop when the page cache holds the range (``RWF_NOWAIT``), in a thread only
when the read would wait for the disk. A thread hop per chunk cost more CPU than the read and the encryption
together.
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
# A quarter MiB per TLS write: large enough to amortise a write, small enough that OpenSSL's output buffer
# stays small.
_TLS_CHUNK = 1 << 18
_NOWAIT = getattr(os, "RWF_NOWAIT", None)  # Linux only; elsewhere every read goes to a thread


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
        try:
            if (sock is None or transport is None or transport.get_write_buffer_size()
                    or transport.get_extra_info("ssl_object") is not None):
                await copy_file(response, f.fileno(), offset, count)
            else:
                await asyncio.get_running_loop().run_in_executor(_POOL, _send, sock.fileno(), f.fileno(),
                                                                 offset, count)
        except (_Stalled, OSError):
            if transport is not None:
                transport.close()  # the body is incomplete: the connection cannot be reused
            return response
        await response.write_eof()
        return response


def read_cached(fd: int, offset: int, count: int) -> bytearray | None:
    """Up to ``count`` bytes at ``offset`` when the page cache holds at least the first page, else None.

    Raises OSError (EOPNOTSUPP) on filesystems that cannot answer without waiting.
    """
    if _NOWAIT is None:
        return None
    buf = bytearray(count)
    try:
        got = os.preadv(fd, [buf], offset, _NOWAIT)
    except BlockingIOError:
        return None
    if got == 0:
        return None
    del buf[got:]
    return buf


async def copy_file(response: web.StreamResponse, fd: int, offset: int, count: int) -> None:
    """Write ``count`` bytes of ``fd`` from ``offset`` through ``response``; the caller ends the body.

    Raises ConnectionResetError when the file ends before ``count`` bytes.
    """
    loop = asyncio.get_running_loop()
    nowait = True
    while count > 0:
        want = min(count, _TLS_CHUNK)
        chunk: bytes | bytearray | None = None
        if nowait:
            try:
                chunk = read_cached(fd, offset, want)
            except OSError:  # the filesystem cannot tell what is cached: a thread reads the rest
                nowait = False
        if chunk is None:
            chunk = await loop.run_in_executor(_POOL, os.pread, fd, want, offset)
            if not chunk:
                raise ConnectionResetError("file ended before the announced length")
        await response.write(chunk)
        offset += len(chunk)
        count -= len(chunk)
