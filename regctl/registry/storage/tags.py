"""Tags: names in a repository that point at a manifest digest."""

from __future__ import annotations

from regctl.registry.errors import ErrorCode, RegistryError
from regctl.registry.reference import Digest
from regctl.registry.storage import layout
from regctl.registry.storage.driver import PathNotFoundError, StorageDriver


class TagStore:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def resolve(self, name: str, tag: str) -> Digest:
        """The digest ``tag`` points at; MANIFEST_UNKNOWN when there is no such tag."""
        try:
            link = await self.driver.get_content(layout.tag_current_link(name, tag))
            return Digest.parse(link.decode().strip())
        except (PathNotFoundError, UnicodeDecodeError, RegistryError):
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"tag": tag}) from None

    async def tag(self, name: str, tag: str, digest: Digest) -> None:
        # The index link first: a crash between the two leaves history without a dangling current link.
        link = str(digest).encode()
        await self.driver.put_content(layout.tag_index_link(name, tag, digest), link)
        await self.driver.put_content(layout.tag_current_link(name, tag), link)

    async def untag(self, name: str, tag: str) -> None:
        try:
            await self.driver.delete(layout.tag_dir(name, tag))
        except PathNotFoundError:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"tag": tag}) from None

    async def all(self, name: str) -> list[str]:
        """Every tag, lexically sorted; NAME_UNKNOWN when the repository has no manifests at all."""
        try:
            names = await self.driver.list(layout.tags_dir(name))
        except PathNotFoundError:
            try:
                await self.driver.stat(layout.manifests_dir(name))
            except PathNotFoundError:
                raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name}) from None
            return []
        return sorted(names)

    async def pointing_at(self, name: str, digest: Digest) -> list[str]:
        found = []
        for tag in await self.all(name):
            try:
                if await self.resolve(name, tag) == digest:
                    found.append(tag)
            except RegistryError:
                continue
        return found
