"""Blob uploads: sessions kept in storage (``_uploads/<id>``) so they survive restarts and work whichever
worker process receives each request.

Data streams through a double buffer: while one ~1 MiB buffer is hashed and written in a worker thread
(hashlib and os.write release the GIL), the event loop receives the next. Memory stays flat whatever the
blob size. sha256 state cannot be saved to disk from Python, so each process remembers the running hash of
the uploads it has seen; when a request arrives at a process that has not (another worker, or after a
restart) the hash is recomputed from the stored data, which costs time but never correctness.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.reference import Digest
from regctl.registry.storage import layout
from regctl.registry.storage.blobs import BlobStore
from regctl.registry.storage.driver import FileWriter, PathNotFoundError, StorageDriver

BUFFER = 1 << 20
_HASH_STATES_KEPT = 512
_INLINE_HASH = 256 * 1024


@dataclass(slots=True)
class _HashState:
    size: int
    hasher: hashlib._Hash


class ClientGone(Exception):
    """The request body ended early: the client disconnected or sent less than it announced."""


class UploadStore:
    def __init__(self, driver: StorageDriver, blobs: BlobStore) -> None:
        self.driver = driver
        self.blobs = blobs
        self._hashes: OrderedDict[tuple[str, str], _HashState] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def start(self, name: str) -> str:
        upload_id = str(uuid.uuid4())
        started = datetime.datetime.now(datetime.UTC).isoformat().encode()
        await self.driver.put_content(layout.upload_started_at(name, upload_id), started)
        self._remember((name, upload_id), _HashState(0, hashlib.sha256()))
        return upload_id

    async def size(self, name: str, upload_id: str) -> int:
        """Bytes received so far; BLOB_UPLOAD_UNKNOWN when there is no such session."""
        try:
            await self.driver.stat(layout.upload_started_at(name, upload_id))
        except PathNotFoundError:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, {"uuid": upload_id}) from None
        try:
            return (await self.driver.stat(layout.upload_data(name, upload_id))).size
        except PathNotFoundError:
            return 0

    def lock(self, name: str, upload_id: str) -> asyncio.Lock:
        """Serialises requests for one session within this process."""
        return self._locks.setdefault((name, upload_id), asyncio.Lock())

    async def append(self, name: str, upload_id: str, body: AsyncIterator[bytes], start: int | None,
                     length: int | None) -> int:
        """Append a request body; returns the new size.

        ``start`` (from Content-Range) must equal the current size, else RANGE_INVALID. ``length`` is the
        announced size of the body; a body that ends short raises ClientGone after keeping what arrived.
        """
        current = await self.size(name, upload_id)
        if start is not None and start != current:
            raise RegistryError(ErrorCode.RANGE_INVALID, {"expected_start": current, "got": start},
                                headers=range_header(current))
        state = await self._hash_state(name, upload_id, current)
        writer = await self.driver.writer(layout.upload_data(name, upload_id), append=current > 0)
        key = (name, upload_id)
        self._hashes.pop(key, None)  # invalid until this append finishes cleanly
        try:
            received = await _pump(body, writer, state.hasher)
        except ClientGone:
            # What arrived is kept and hashed: the client resumes from the Range it is told.
            self._remember(key, _HashState(writer.size, state.hasher))
            raise
        finally:
            await writer.close()
        state.size = current + received
        self._remember(key, state)
        if length is not None and received != length:
            raise ClientGone(f"received {received} of {length} bytes")
        return state.size

    async def finish(self, name: str, upload_id: str, digest: Digest) -> int:
        """Verify the content against ``digest``, move it into place and link it; returns its size."""
        size = await self.size(name, upload_id)
        state = self._hashes.get((name, upload_id))
        if digest.algorithm == "sha256" and state is not None and state.size == size:
            actual = state.hasher.hexdigest()
        else:
            actual = (await self._rehash(name, upload_id, digest.hasher(), size)).hexdigest()
        if actual != digest.hex:
            raise RegistryError(ErrorCode.DIGEST_INVALID, {"expected": str(digest),
                                                           "actual": f"{digest.algorithm}:{actual}"})
        data_path = layout.upload_data(name, upload_id)
        if await self.blobs.size(digest) is None:
            if size == 0:
                await self.driver.put_content(layout.blob_data(digest), b"")
            else:
                writer = await self.driver.writer(data_path, append=True)
                await writer.commit()  # durable before it becomes visible by rename
                await self.driver.move(data_path, layout.blob_data(digest))
        await self.blobs.link(name, digest)
        await self.cancel(name, upload_id)
        return size

    async def cancel(self, name: str, upload_id: str) -> None:
        self._hashes.pop((name, upload_id), None)
        self._locks.pop((name, upload_id), None)
        try:
            await self.driver.delete(layout.upload_dir(name, upload_id))
        except PathNotFoundError:
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, {"uuid": upload_id}) from None

    async def _hash_state(self, name: str, upload_id: str, size: int) -> _HashState:
        state = self._hashes.get((name, upload_id))
        if state is not None and state.size == size:
            return state
        return _HashState(size, await self._rehash(name, upload_id, hashlib.sha256(), size))

    async def _rehash(self, name: str, upload_id: str, hasher: hashlib._Hash, size: int) -> hashlib._Hash:
        if size:
            async for chunk in self.driver.reader(layout.upload_data(name, upload_id), 0, size):
                await asyncio.to_thread(hasher.update, chunk)
        return hasher

    def _remember(self, key: tuple[str, str], state: _HashState) -> None:
        self._hashes[key] = state
        while len(self._hashes) > _HASH_STATES_KEPT:
            self._hashes.popitem(last=False)


def range_header(size: int) -> dict[str, str]:
    """The upload's ``Range``: inclusive, "0-<size-1>"; an empty upload says "0-0" as Distribution does."""
    return {"Range": f"0-{max(size - 1, 0)}"}


async def _pump(body: AsyncIterator[bytes], writer: FileWriter, hasher: hashlib._Hash) -> int:
    """Copy ``body`` into ``writer`` while hashing; the next buffer is received while the last is written."""
    received = 0
    pending: asyncio.Future[None] | None = None
    buf = bytearray()
    try:
        async for chunk in body:
            buf += chunk
            if len(buf) >= BUFFER:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(_consume(bytes(buf), writer, hasher))
                received += len(buf)
                buf.clear()
    finally:
        # On success and on a broken body alike, what arrived is written and hashed, in order.
        if pending is not None:
            await pending
        if buf:
            await _consume(bytes(buf), writer, hasher)
            received += len(buf)
    return received


async def _consume(data: bytes, writer: FileWriter, hasher: hashlib._Hash) -> None:
    if len(data) < _INLINE_HASH:
        hasher.update(data)  # cheaper than a thread hop
        await writer.write(data)
    else:
        await asyncio.gather(asyncio.to_thread(hasher.update, data), writer.write(data))
