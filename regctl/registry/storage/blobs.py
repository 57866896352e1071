"""Blobs: content stored once by digest, and linked into each repository that may serve it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from regctl.registry.reference import Digest
from regctl.registry.storage import layout
from regctl.registry.storage.driver import PathNotFoundError, StorageDriver


class BlobStore:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def size(self, digest: Digest) -> int | None:
        """Size of the stored content, or None when the registry does not hold it."""
        try:
            info = await self.driver.stat(layout.blob_data(digest))
        except PathNotFoundError:
            return None
        return None if info.is_dir else info.size

    async def is_linked(self, name: str, digest: Digest) -> bool:
        """True when ``name`` may serve the blob: it was uploaded, mounted or pushed as a manifest there."""
        for path in (layout.layer_link(name, digest), layout.revision_link(name, digest)):
            try:
                await self.driver.stat(path)
                return True
            except PathNotFoundError:
                continue
        return False

    async def linked_size(self, name: str, digest: Digest) -> int | None:
        """Size of a blob that ``name`` may serve; None when it may not or the content is gone."""
        if not await self.is_linked(name, digest):
            return None
        return await self.size(digest)

    async def link(self, name: str, digest: Digest) -> None:
        await self.driver.put_content(layout.layer_link(name, digest), str(digest).encode())

    async def unlink(self, name: str, digest: Digest) -> bool:
        """Remove the repository's link (the content stays for garbage collection); False if none."""
        try:
            await self.driver.delete(layout.layer_link(name, digest).rsplit("/", 1)[0])
            return True
        except PathNotFoundError:
            return False

    async def put(self, digest: Digest, data: bytes) -> None:
        """Store small content (a manifest) unless it is already there; content never changes."""
        if await self.size(digest) is None:
            await self.driver.put_content(layout.blob_data(digest), data)

    async def get(self, digest: Digest) -> bytes:
        return await self.driver.get_content(layout.blob_data(digest))

    def local_path(self, digest: Digest) -> str | None:
        return self.driver.local_path(layout.blob_data(digest))

    def reader(self, digest: Digest, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.driver.reader(layout.blob_data(digest), offset, length)
