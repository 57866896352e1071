"""A driver holding a tree of dicts in memory, with the filesystem driver's semantics; for unit tests.

Every method completes without awaiting, so each one is atomic with respect to the others.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from regctl.registry.storage.driver import (
    FileInfo,
    InvalidOffsetError,
    PathNotFoundError,
    StorageError,
    check_path,
)

_CHUNK = 1 << 20


@dataclass
class _File:
    data: bytearray = field(default_factory=bytearray)
    mtime: float = field(default_factory=time.time)


@dataclass
class _Dir:
    children: dict[str, _File | _Dir] = field(default_factory=dict)
    mtime: float = field(default_factory=time.time)


class InMemoryDriver:
    """Directories are explicit nodes, so like on disk they outlive their last child."""

    name = "inmemory"

    def __init__(self) -> None:
        self._root = _Dir()

    def _lookup(self, path: str) -> _File | _Dir:
        node: _File | _Dir = self._root
        for part in check_path(path, self.name)[1:].split("/"):
            child = node.children.get(part) if isinstance(node, _Dir) else None
            if child is None:
                raise PathNotFoundError(path, driver=self.name)
            node = child
        return node

    def _file(self, path: str) -> _File:
        node = self._lookup(path)
        if not isinstance(node, _File):
            raise PathNotFoundError(path, driver=self.name)
        return node

    def _parent(self, path: str, create: bool) -> tuple[_Dir, str]:
        """The directory holding ``path``, and its last name; PathNotFoundError if a file is in the way."""
        *parts, name = check_path(path, self.name)[1:].split("/")
        node = self._root
        for part in parts:
            child = node.children.get(part)
            if child is None and create:
                child = node.children[part] = _Dir()
            if not isinstance(child, _Dir):
                raise PathNotFoundError(path, driver=self.name)
            node = child
        return node, name

    def _new_file(self, path: str, data: bytes) -> _File:
        parent, name = self._parent(path, create=True)
        if isinstance(parent.children.get(name), _Dir):
            raise PathNotFoundError(path, "is a directory", self.name)
        # A new node, not the old one refilled: readers already streaming the old content keep it.
        node = parent.children[name] = _File(bytearray(data))
        return node

    async def get_content(self, path: str) -> bytes:
        return bytes(self._file(path).data)

    async def put_content(self, path: str, data: bytes) -> None:
        self._new_file(path, data)

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        data = self._file(path).data
        size = len(data)
        if offset < 0 or offset > size or (length is not None and length < 0):
            raise InvalidOffsetError(path, f"offset {offset} length {length} of {size} bytes", self.name)
        end = size if length is None else min(size, offset + length)
        for start in range(offset, end, _CHUNK):
            yield bytes(data[start:min(start + _CHUNK, end)])

    async def writer(self, path: str, append: bool = False) -> _MemoryWriter:
        node = self._file(path) if append else self._new_file(path, b"")
        return _MemoryWriter(self, path, node)

    async def stat(self, path: str) -> FileInfo:
        node = self._lookup(path)
        if isinstance(node, _Dir):
            return FileInfo(path, 0, node.mtime, True)
        return FileInfo(path, len(node.data), node.mtime, False)

    async def list(self, path: str) -> list[str]:
        node = self._lookup(path)
        if not isinstance(node, _Dir):
            raise PathNotFoundError(path, "not a directory", self.name)
        return list(node.children)

    async def move(self, source: str, dest: str) -> None:
        check_path(dest, self.name)  # as in every driver, both paths are checked before any lookup
        node = self._lookup(source)
        if dest.startswith(source + "/"):
            raise StorageError(dest, "cannot move a directory into itself", self.name)
        dest_parent, dest_name = self._parent(dest, create=True)
        if isinstance(dest_parent.children.get(dest_name), _Dir):
            raise PathNotFoundError(dest, "is a directory", self.name)
        source_parent, source_name = self._parent(source, create=False)
        del source_parent.children[source_name]
        dest_parent.children[dest_name] = node

    async def delete(self, path: str) -> None:
        parent, name = self._parent(path, create=False)
        if parent.children.pop(name, None) is None:
            raise PathNotFoundError(path, driver=self.name)

    def local_path(self, path: str) -> str | None:
        check_path(path, self.name)
        return None


class _MemoryWriter:
    def __init__(self, driver: InMemoryDriver, path: str, node: _File) -> None:
        self._driver = driver
        self._path = path
        self._node = node
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._node.data)

    async def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError(f"writer for {self._path} is closed")
        self._node.data += data
        self._node.mtime = time.time()
        return len(data)

    async def commit(self) -> None:
        if self._closed:
            raise ValueError(f"writer for {self._path} is closed")
        self._closed = True

    async def cancel(self) -> None:
        self._closed = True
        with contextlib.suppress(PathNotFoundError):
            await self._driver.delete(self._path)

    async def close(self) -> None:
        self._closed = True
