"""Blob downloads over TLS: the file is copied through the TLS layer, read in the event loop when the page
cache holds it and in a thread when it must come from disk.

Pages are evicted for real with ``posix_fadvise(DONTNEED)`` after an fsync, so the disk path is the one taken
(``read_cached`` returning None proves it). The advice is only advice: pages still on another CPU's LRU
list stay, so eviction is repeated until ``mincore`` says the file left the cache. The last tests pull
through a real TLS listener.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import ssl
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from regctl.registry.app import create_app
from regctl.registry.handlers import sendfile
from regctl.registry.handlers.sendfile import copy_file, read_cached
from regctl.registry.storage.filesystem import FilesystemDriver
from tests.helpers.certs import cert_pem, issue, make_ca
from tests.unit.registry.conftest import digest_of, make_config, push_blob

SIZE = (1 << 20) + 12_345  # several TLS chunks and a ragged end


def _write(path: Path, data: bytes) -> Path:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())  # dirty pages cannot be evicted
    return path


_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mmap.restype = ctypes.c_void_p
_LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def _resident_pages(path: Path) -> int:
    """How many of the file's pages the page cache holds, as ``mincore`` reports it."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        address = _LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        try:
            vector = (ctypes.c_ubyte * ((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE))()
            if _LIBC.mincore(address, size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return sum(v & 1 for v in vector)
        finally:
            _LIBC.munmap(address, size)
    finally:
        os.close(fd)


def _evict(path: Path) -> None:
    """Drop the file from the page cache, or skip the test where the kernel keeps it there."""
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(50):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            if _resident_pages(path) == 0:
                return
            time.sleep(0.02)
    finally:
        os.close(fd)
    pytest.skip(f"the kernel kept {_resident_pages(path)} pages of the file cached despite DONTNEED")


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    return _write(tmp_path / "data", data), data


class Body:
    """Collects what ``copy_file`` writes, as a response would send it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, chunk: bytes | bytearray) -> None:
        self.data += chunk
        self.writes += 1


def test_read_cached_reads_what_the_page_cache_holds_and_declines_the_rest(blob) -> None:
    path, data = blob
    fd = os.open(path, os.O_RDONLY)
    try:
        os.pread(fd, SIZE, 0)
        assert read_cached(fd, 100, 5000) == data[100:5100]
        assert read_cached(fd, SIZE - 10, 5000) == data[-10:]  # a short read at the end
        _evict(path)
        assert read_cached(fd, 0, 5000) is None
    finally:
        os.close(fd)


@pytest.mark.parametrize("evicted", [False, True], ids=["cached", "from-disk"])
@pytest.mark.parametrize(("offset", "count"), [(0, SIZE), (7, 300_001), (SIZE - 1, 1)])
async def test_copy_file_sends_exactly_the_range(blob, evicted, offset, count) -> None:
    path, data = blob
    if evicted:
        _evict(path)
    body = Body()
    fd = os.open(path, os.O_RDONLY)
    try:
        await copy_file(body, fd, offset, count)
    finally:
        os.close(fd)
    assert bytes(body.data) == data[offset:offset + count]


async def test_a_file_shorter_than_announced_ends_the_copy_with_an_error(blob) -> None:
    path, _ = blob
    body = Body()
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ConnectionResetError, match="file ended before the announced length"):
            await copy_file(body, fd, 0, SIZE + 10)
    finally:
        os.close(fd)
    assert len(body.data) == SIZE


async def test_a_filesystem_that_cannot_say_what_is_cached_is_read_by_threads(blob, monkeypatch) -> None:
    path, data = blob
    calls = []

    def unsupported(fd, buffers, offset, flags=0):
        calls.append(offset)
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(sendfile.os, "preadv", unsupported)
    body = Body()
    fd = os.open(path, os.O_RDONLY)
    try:
        await copy_file(body, fd, 0, SIZE)
    finally:
        os.close(fd)
    assert bytes(body.data) == data
    assert calls == [0]  # asked once, then every chunk went to a thread
    assert body.writes > 1


@pytest.fixture
async def tls_client(aiohttp_client, tmp_path):
    ca = make_ca()
    issue(ca, "registry", hosts=("127.0.0.1",)).write(tmp_path / "server.crt", tmp_path / "server.key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    verify = ssl.create_default_context(cadata=cert_pem(ca.cert).decode())
    server = TestServer(create_app(make_config(), driver=FilesystemDriver(str(tmp_path / "store"))))
    await server.start_server(ssl=context)
    client = await aiohttp_client(server, connector=aiohttp.TCPConnector(ssl=verify))
    assert client.make_url("/").scheme == "https"
    return client, tmp_path / "store"


def _stored(root: Path, digest: str) -> Path:
    hexdigest = digest.split(":", 1)[1]
    return root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


@pytest.mark.parametrize("evicted", [False, True], ids=["cached", "from-disk"])
async def test_blobs_pulled_over_tls_arrive_whole_and_by_range(tls_client, evicted) -> None:
    client, root = tls_client
    data = os.urandom(SIZE)
    digest = await push_blob(client, "team/app", data)
    assert digest == digest_of(data)
    if evicted:
        _evict(_stored(root, digest))

    whole = await client.get(f"/v2/team/app/blobs/{digest}")
    assert whole.status == 200
    assert await whole.read() == data

    if evicted:
        _evict(_stored(root, digest))
    part = await client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=5-700004"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 5-700004/{SIZE}"
    assert await part.read() == data[5:700005]
