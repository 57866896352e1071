"""The storage driver contract: a small async key/value filesystem that knows nothing about registries.

Paths are absolute, slash-separated keys such as ``/docker/registry/v2/blobs/sha256/ab/<hex>/data``
(``layout.py`` builds them). A valid path matches ``PATH_RE``: it starts with ``/``, has no empty, ``.`` or
``..`` component and no trailing slash. Drivers raise the typed errors below and nothing else for expected
conditions; any other exception is a bug or an outage and surfaces as a 500.

Every write that makes content visible is atomic: a reader sees either the old value or the whole new one,
never a prefix, even across a crash (``put_content`` and ``move``; a ``FileWriter`` writes to a path that
only becomes a blob through ``move``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

PATH_RE = re.compile(r"(/[A-Za-z0-9._-]+)+")


class StorageError(Exception):
    """Base of driver errors; ``driver`` names the driver that raised it."""

    def __init__(self, path: str, detail: str = "", driver: str = "") -> None:
        super().__init__(f"{driver or 'storage'}: {detail or type(self).__name__}: {path}")
        self.path = path
        self.detail = detail
        self.driver = driver


class PathNotFoundError(StorageError):
    """The path does not exist (or is a directory where content was expected)."""


class InvalidPathError(StorageError):
    """The path does not match ``PATH_RE``."""


class InvalidOffsetError(StorageError):
    """A read or append offset lies outside the content."""


def check_path(path: str, driver: str = "") -> str:
    if not PATH_RE.fullmatch(path) or "/./" in path + "/" or "/../" in path + "/":
        raise InvalidPathError(path, "invalid path", driver)
    return path


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool


class FileWriter(Protocol):
    """An append-only writer for large content (upload data). Not safe for concurrent use."""

    @property
    def size(self) -> int:
        """Bytes in the file: what existed when opened with ``append=True`` plus everything written."""
        ...

    async def write(self, data: bytes) -> int:
        """Append ``data``; returns ``len(data)``. Raises if the writer is closed, committed or cancelled."""
        ...

    async def commit(self) -> None:
        """Flush and fsync: after it returns the content survives a crash. The writer is then closed."""
        ...

    async def cancel(self) -> None:
        """Close and remove the file. Never raises PathNotFoundError."""
        ...

    async def close(self) -> None:
        """Close without making durable; what was written stays (an upload can be resumed). Idempotent."""
        ...


class StorageDriver(Protocol):
    """The contract every storage backend implements (filesystem, inmemory, and later s3)."""

    name: str

    async def get_content(self, path: str) -> bytes:
        """The whole content at ``path``. Raises PathNotFoundError. Meant for small files (links, manifests)."""
        ...

    async def put_content(self, path: str, data: bytes) -> None:
        """Atomically replace the content at ``path`` (parents are created); durable when it returns."""
        ...

    def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes (all when None) from ``offset`` in bounded chunks.

        Raises PathNotFoundError or InvalidOffsetError (offset beyond the end) on the first iteration.
        Memory use does not grow with the content's size.
        """
        ...

    async def writer(self, path: str, append: bool = False) -> FileWriter:
        """A writer at ``path``; with ``append`` it continues existing content, else it truncates.

        ``append=True`` on a missing path raises PathNotFoundError.
        """
        ...

    async def stat(self, path: str) -> FileInfo:
        """Size, mtime and kind of ``path``. Raises PathNotFoundError."""
        ...

    async def list(self, path: str) -> list[str]:
        """Names (not paths) of the direct children of directory ``path``, in no set order.

        Raises PathNotFoundError when ``path`` does not exist or is not a directory.
        """
        ...

    async def move(self, source: str, dest: str) -> None:
        """Atomically rename ``source`` to ``dest``, replacing ``dest``; parents of ``dest`` are created.

        Raises PathNotFoundError when ``source`` does not exist.
        """
        ...

    async def delete(self, path: str) -> None:
        """Remove ``path`` and everything under it. Raises PathNotFoundError when nothing was there."""
        ...

    def local_path(self, path: str) -> str | None:
        """A local filesystem path holding the content, for sendfile; None for drivers without one."""
        ...
