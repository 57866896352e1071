"""Manifests: stored as blobs, linked into a repository as revisions, validated on push.

A manifest's content never changes for a digest, so parsed manifests are cached by digest; whether a
repository holds one is still read from storage on every request (a delete may come from another worker).
"""

from __future__ import annotations

from collections import OrderedDict

from regctl.registry import manifest as mf
from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.reference import Digest
from regctl.registry.storage import layout
from regctl.registry.storage.blobs import BlobStore
from regctl.registry.storage.driver import PathNotFoundError, StorageDriver

_CACHE_BYTES = 64 * 1024 * 1024


class ManifestStore:
    def __init__(self, driver: StorageDriver, blobs: BlobStore) -> None:
        self.driver = driver
        self.blobs = blobs
        self._cache: OrderedDict[Digest, mf.Manifest] = OrderedDict()
        self._cached_bytes = 0

    async def exists(self, name: str, digest: Digest) -> bool:
        try:
            await self.driver.stat(layout.revision_link(name, digest))
            return True
        except PathNotFoundError:
            return False

    async def get(self, name: str, digest: Digest) -> mf.Manifest:
        """The manifest ``digest`` of repository ``name``; MANIFEST_UNKNOWN when it has none."""
        if not await self.exists(name, digest):
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"digest": str(digest)})
        return await self.load(digest)

    async def load(self, digest: Digest) -> mf.Manifest:
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return cached
        try:
            data = await self.blobs.get(digest)
        except PathNotFoundError:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"digest": str(digest)}) from None
        manifest = mf.load(data, digest)
        self._remember(manifest)
        return manifest

    async def put(self, name: str, data: bytes, content_type: str | None, digest: Digest) -> mf.Manifest:
        """Validate and store; every blob and child manifest it references must already be in ``name``."""
        manifest = mf.parse(data, digest, content_type)
        missing = [str(d.digest) for d in manifest.blobs if await self.blobs.linked_size(name, d.digest) is None]
        missing += [str(d.digest) for d in manifest.children if not await self.exists(name, d.digest)]
        if missing:
            raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, {"missing": missing})
        await self.blobs.put(digest, data)
        await self.driver.put_content(layout.revision_link(name, digest), str(digest).encode())
        self._remember(manifest)
        return manifest

    async def delete(self, name: str, digest: Digest) -> None:
        try:
            await self.driver.delete(layout.revision_link(name, digest).rsplit("/", 1)[0])
        except PathNotFoundError:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"digest": str(digest)}) from None

    async def revisions(self, name: str) -> list[Digest]:
        found = []
        for algorithm in ("sha256", "sha512"):
            try:
                hexes = await self.driver.list(layout.revisions_dir(name, algorithm))
            except PathNotFoundError:
                continue
            for encoded in hexes:
                try:
                    found.append(Digest.parse(f"{algorithm}:{encoded}"))
                except RegistryError:
                    continue  # not a revision: a stray file in the directory
        return found

    def _remember(self, manifest: mf.Manifest) -> None:
        if manifest.digest in self._cache:
            return
        self._cache[manifest.digest] = manifest
        self._cached_bytes += len(manifest.data)
        while self._cached_bytes > _CACHE_BYTES:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= len(old.data)
