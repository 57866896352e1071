"""A 2 GiB blob pushes and pulls through ``regctl serve`` while the server's memory stays flat."""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.servers import RegistryFactory

SIZE = 2 * 1024 * 1024 * 1024
BLOCK = 1024 * 1024
# Buffers in flight per upload and download are a few MiB; 32 MiB leaves room for aiohttp, the manifest
# cache and allocator slack while still failing loudly if anything holds a blob (or a large share of it).
ALLOWED_GROWTH_KB = 32 * 1024


def _workers(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def _blocks() -> Iterator[bytes]:
    block = hashlib.shake_128(b"regctl large blob").digest(BLOCK)
    for i in range(SIZE // BLOCK):
        yield i.to_bytes(8, "big") + block[8:]  # every block differs, so nothing can be deduplicated


@pytest.fixture
def server(registry_factory: RegistryFactory, tmp_path: Path):
    return registry_factory.start("regctl", tmp_path / "root")


def test_two_gib_blob_round_trip_with_flat_memory(server) -> None:
    workers = _workers(server.proc.pid)
    assert workers, "regctl serve runs its workers as child processes"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request("GET", "/v2/")
    conn.getresponse().read()
    before = {pid: _peak_rss_kb(pid) for pid in workers}

    digest = hashlib.sha256()
    for block in _blocks():
        digest.update(block)
    ref = f"sha256:{digest.hexdigest()}"

    conn.request("POST", "/v2/big/blob/blobs/uploads/")
    started = conn.getresponse()
    started.read()
    assert started.status == 202
    location = started.getheader("Location")
    path = location.split(str(server.port), 1)[1]
    conn.putrequest("PUT", f"{path}{'&' if '?' in path else '?'}digest={ref}")
    conn.putheader("Content-Length", str(SIZE))
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    for block in _blocks():
        conn.send(block)
    pushed = conn.getresponse()
    assert pushed.status == 201, pushed.read()
    pushed.read()
    assert pushed.getheader("Docker-Content-Digest") == ref

    conn.request("GET", f"/v2/big/blob/blobs/{ref}")
    pulled = conn.getresponse()
    assert pulled.status == 200
    assert int(pulled.getheader("Content-Length")) == SIZE
    check, received = hashlib.sha256(), 0
    while chunk := pulled.read(BLOCK):
        check.update(chunk)
        received += len(chunk)
    assert received == SIZE
    assert check.hexdigest() == digest.hexdigest()
    conn.close()

    growth = {pid: _peak_rss_kb(pid) - before[pid] for pid in workers}
    assert max(growth.values()) < ALLOWED_GROWTH_KB, f"peak RSS grew by {growth} kB"
