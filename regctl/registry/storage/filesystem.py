"""The local filesystem driver: key ``/docker/...`` is file ``<rootdirectory>/docker/...``.

The mapping is Distribution's, so a ``registry:2`` data directory is served as is. Small reads
(``get_content``, ``stat``, ``list``) run inline: they hit the page cache and sit on the manifest GET path,
where a thread hop costs more than the read. Anything that fsyncs or moves large buffers runs in a thread.

Durability rule: ``put_content`` and ``FileWriter.commit`` fsync the file and its directory; ``move`` only
fsyncs the destination directory, so callers commit a writer before moving its file.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import stat as stat_mod
import uuid
from collections.abc import AsyncIterator, Iterator

from regctl.registry.storage.driver import (
    FileInfo,
    InvalidOffsetError,
    PathNotFoundError,
    check_path,
)

# "~" is outside PATH_RE, so no key can name a temp file; list() hides them (they outlive a crash).
TEMP_PREFIX = ".tmp~"
_CHUNK = 1 << 20
_NOT_FOUND = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _append_all(file: io.FileIO, data: bytes) -> None:
    # Through the FileIO, not its fd: if the awaiting task was cancelled and the writer closed meanwhile,
    # the rest of this loop fails on the closed file instead of writing to a reused descriptor.
    view = memoryview(data)
    while view:
        view = view[file.write(view):]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_parents(full: str) -> None:
    """Create the missing directories above ``full``, fsyncing each new entry so a crash cannot drop it."""
    parent = os.path.dirname(full)
    if os.path.isdir(parent):
        return
    _make_parents(parent)
    with contextlib.suppress(FileExistsError):  # a concurrent writer got there first
        os.mkdir(parent, 0o755)
    _fsync_dir(os.path.dirname(parent))


def _put(full: str, data: bytes) -> None:
    _make_parents(full)
    tmp = os.path.join(os.path.dirname(full), f"{TEMP_PREFIX}{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, full)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(os.path.dirname(full))


def _open_writer(full: str, append: bool) -> io.FileIO:
    if not append:
        _make_parents(full)
    flags = os.O_WRONLY | os.O_APPEND | (0 if append else os.O_CREAT | os.O_TRUNC)
    # A FileIO rather than a bare fd: a writer that is never closed still frees it (with a ResourceWarning).
    return io.FileIO(os.open(full, flags, 0o644), "a")


def _commit(fd: int, full: str) -> None:
    os.fsync(fd)
    _fsync_dir(os.path.dirname(full))  # a new upload file's directory entry must survive too


def _move(source: str, dest: str) -> None:
    _make_parents(dest)
    os.replace(source, dest)
    _fsync_dir(os.path.dirname(dest))


def _delete(full: str) -> None:
    if stat_mod.S_ISDIR(os.lstat(full).st_mode):
        shutil.rmtree(full)
    else:
        os.unlink(full)


class FilesystemDriver:
    """Stores each key as a file under ``rootdirectory``."""

    name = "filesystem"

    def __init__(self, rootdirectory: str) -> None:
        # "/" would otherwise map keys to "//docker/..."
        self._root = os.path.abspath(rootdirectory).rstrip("/")

    def _full(self, path: str) -> str:
        return self._root + check_path(path, self.name)

    @contextlib.contextmanager
    def _not_found(self, path: str) -> Iterator[None]:
        try:
            yield
        except _NOT_FOUND as e:
            raise PathNotFoundError(path, driver=self.name) from e

    async def get_content(self, path: str) -> bytes:
        full = self._full(path)
        with self._not_found(path), open(full, "rb") as f:
            return f.read()

    async def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)
        with self._not_found(path):
            await asyncio.to_thread(_put, full, data)

    async def reader(self, path: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        full = self._full(path)
        # Read errors past open() are I/O failures, never one of the mapped not-found errors.
        with self._not_found(path), open(full, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            if offset < 0 or offset > size or (length is not None and length < 0):
                raise InvalidOffsetError(path, f"offset {offset} length {length} of {size} bytes", self.name)
            remaining = size - offset if length is None else min(length, size - offset)
            f.seek(offset)
            while remaining > 0:
                chunk = await asyncio.to_thread(f.read, min(_CHUNK, remaining))
                if not chunk:  # truncated while we read
                    return
                remaining -= len(chunk)
                yield chunk

    async def writer(self, path: str, append: bool = False) -> _FileWriter:
        full = self._full(path)
        with self._not_found(path):
            file = await asyncio.to_thread(_open_writer, full, append)
        return _FileWriter(full, file)

    async def stat(self, path: str) -> FileInfo:
        full = self._full(path)
        with self._not_found(path):
            st = os.stat(full)
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    async def list(self, path: str) -> list[str]:
        full = self._full(path)
        with self._not_found(path):
            names = os.listdir(full)
        return [n for n in names if not n.startswith(TEMP_PREFIX)]

    async def move(self, source: str, dest: str) -> None:
        full_source, full_dest = self._full(source), self._full(dest)
        with self._not_found(source):
            os.lstat(full_source)  # inline: a missing source must not leave dest's parents behind
        # Past that check a not-found error concerns dest: its parent is a file, or it is a directory.
        with self._not_found(dest):
            await asyncio.to_thread(_move, full_source, full_dest)

    async def delete(self, path: str) -> None:
        full = self._full(path)
        with self._not_found(path):
            await asyncio.to_thread(_delete, full)

    def local_path(self, path: str) -> str | None:
        return self._full(path)


class _FileWriter:
    def __init__(self, full: str, file: io.FileIO) -> None:
        self._full = full
        self._file = file
        self._size = os.fstat(file.fileno()).st_size

    @property
    def size(self) -> int:
        return self._size

    def _fd(self) -> int:
        if self._file.closed:
            raise ValueError(f"writer for {self._full} is closed")
        return self._file.fileno()

    async def write(self, data: bytes) -> int:
        fd = self._fd()
        try:
            await asyncio.to_thread(_append_all, self._file, data)
        finally:
            # Exact even when a write failed midway, so an upload resumes at the right offset.
            self._size = os.fstat(fd).st_size
        return len(data)

    async def commit(self) -> None:
        fd = self._fd()
        try:
            await asyncio.to_thread(_commit, fd, self._full)
        finally:
            self._file.close()

    async def cancel(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._full)

    async def close(self) -> None:
        self._file.close()
