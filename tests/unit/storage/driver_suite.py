"""The conformance suite every storage driver passes (Distribution's ``driver/testsuites/testsuites.go``).

A test module subclasses ``DriverSuite`` and provides a ``driver`` fixture. pytest collects these tests only
through such a subclass, since this module's name does not start with ``test_``. Nothing here relies on empty
directories surviving their last child, which object stores such as S3 do not have.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest

from regctl.registry.storage.driver import (
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    StorageDriver,
)

# What the suite takes "bounded chunks" to mean: the HTTP layer writes them as they come.
MAX_CHUNK = 1 << 20

INVALID_PATHS = [
    "", "a", "a/b", "/", "//", "//a", "/a//b", "/a/", "/.", "/..", "/a/.", "/a/..", "/a/./b", "/a/../b",
    "/../etc/passwd", "/a/%2e%2e", "/a b", "/a\\b", "/a/b\x00", "/a/\n", "/a/é", "/a/b~c", "/a/b:c",
    "/a\n", "/a/..\n",
]
# Unusual but valid: dots and dashes are name characters as long as a component is not "." or "..".
VALID_PATHS = ["/.hidden", "/a/...", "/a/.b.", "/a/-_-", "/A/Z9/x.y-z_"]


async def read(driver: StorageDriver, path: str, offset: int = 0, length: int | None = None) -> list[bytes]:
    return [chunk async for chunk in driver.reader(path, offset, length)]


def _calls(driver: StorageDriver, path: str) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every method, called with ``path`` (as either argument of ``move``)."""

    async def local_path() -> object:
        return driver.local_path(path)

    return {
        "get_content": lambda: driver.get_content(path),
        "put_content": lambda: driver.put_content(path, b"x"),
        "reader": lambda: read(driver, path),
        "writer": lambda: driver.writer(path),
        "writer-append": lambda: driver.writer(path, append=True),
        "stat": lambda: driver.stat(path),
        "list": lambda: driver.list(path),
        "move-source": lambda: driver.move(path, "/dest"),
        "move-dest": lambda: driver.move("/source", path),
        "delete": lambda: driver.delete(path),
        "local_path": local_path,
    }


class DriverSuite:
    # -- put_content / get_content

    @pytest.mark.parametrize("data", [b"", b"x", bytes(range(256)), os.urandom(3 * MAX_CHUNK + 5)],
                             ids=["empty", "one", "all-bytes", "3MiB"])
    async def test_put_then_get_returns_the_same_bytes(self, driver: StorageDriver, data: bytes) -> None:
        await driver.put_content("/round/trip/data", data)
        assert await driver.get_content("/round/trip/data") == data

    @pytest.mark.parametrize("path", VALID_PATHS)
    async def test_unusual_valid_names_round_trip(self, driver: StorageDriver, path: str) -> None:
        await driver.put_content(path, path.encode())
        assert await driver.get_content(path) == path.encode()

    async def test_overwrite_replaces_the_whole_value(self, driver: StorageDriver) -> None:
        await driver.put_content("/o/link", b"a long original value")
        await driver.put_content("/o/link", b"short")
        assert await driver.get_content("/o/link") == b"short"
        assert (await driver.stat("/o/link")).size == 5

    @pytest.mark.parametrize("path", ["/missing", "/missing/deeper/file", "/file/below-a-file", "/dir"])
    async def test_get_content_of_a_missing_path_raises(self, driver: StorageDriver, path: str) -> None:
        await driver.put_content("/file", b"x")
        await driver.put_content("/dir/child", b"x")
        with pytest.raises(PathNotFoundError) as caught:
            await driver.get_content(path)
        assert (caught.value.path, caught.value.driver) == (path, driver.name)

    async def test_concurrent_puts_leave_one_complete_value(self, driver: StorageDriver) -> None:
        values = [bytes([i]) * (256 << 10) for i in range(16)]
        # Fresh parents, so the puts also race to create the same directories.
        await asyncio.gather(*(driver.put_content("/race/a/b/link", v) for v in values))
        assert await driver.get_content("/race/a/b/link") in values
        assert await driver.list("/race/a/b") == ["link"]

    async def test_listing_during_a_put_never_shows_partial_files(self, driver: StorageDriver) -> None:
        await driver.put_content("/busy/other", b"x")
        put = asyncio.create_task(driver.put_content("/busy/data", os.urandom(8 * MAX_CHUNK)))
        seen: set[str] = set()
        while not put.done():
            seen.update(await driver.list("/busy"))
            await asyncio.sleep(0)
        await put
        assert seen <= {"other", "data"}
        assert sorted(await driver.list("/busy")) == ["data", "other"]

    async def test_a_reader_keeps_the_old_value_when_it_is_replaced(self, driver: StorageDriver) -> None:
        old = os.urandom(3 * MAX_CHUNK)
        await driver.put_content("/swap/data", old)
        stream = driver.reader("/swap/data")
        first = await anext(stream)
        await driver.put_content("/swap/data", b"new")
        rest = [chunk async for chunk in stream]
        assert b"".join([first, *rest]) == old
        assert await driver.get_content("/swap/data") == b"new"

    # -- path validation

    @pytest.mark.parametrize("path", INVALID_PATHS)
    async def test_every_method_rejects_an_invalid_path(self, driver: StorageDriver, path: str) -> None:
        for method, call in _calls(driver, path).items():
            with pytest.raises(InvalidPathError) as caught:
                await call()
            assert (caught.value.path, caught.value.driver) == (path, driver.name), method
        # Validation comes before any effect: the valid side of the moves was not created.
        for valid in ("/source", "/dest"):
            with pytest.raises(PathNotFoundError):
                await driver.stat(valid)

    # -- list and stat

    async def test_list_returns_names_of_direct_children(self, driver: StorageDriver) -> None:
        for path in ("/d/a", "/d/b/c", "/d/b/d/e", "/d/f", "/dx/g"):
            await driver.put_content(path, b"x")
        assert sorted(await driver.list("/d")) == ["a", "b", "f"]
        assert sorted(await driver.list("/d/b")) == ["c", "d"]

    @pytest.mark.parametrize("path", ["/missing", "/l/file", "/l/file/below"])
    async def test_list_of_a_missing_dir_or_a_file_raises(self, driver: StorageDriver, path: str) -> None:
        await driver.put_content("/l/file", b"x")
        with pytest.raises(PathNotFoundError) as caught:
            await driver.list(path)
        assert (caught.value.path, caught.value.driver) == (path, driver.name)

    async def test_stat_of_files_and_directories(self, driver: StorageDriver) -> None:
        await driver.put_content("/s/dir/file", b"12345")
        info = await driver.stat("/s/dir/file")
        assert (info.path, info.size, info.is_dir) == ("/s/dir/file", 5, False)
        for path in ("/s", "/s/dir"):
            info = await driver.stat(path)
            assert (info.path, info.is_dir) == (path, True)

    async def test_stat_mtime_does_not_go_back_on_overwrite(self, driver: StorageDriver) -> None:
        await driver.put_content("/m/file", b"1")
        first = (await driver.stat("/m/file")).mtime
        await driver.put_content("/m/file", b"2")
        assert first > 0
        assert (await driver.stat("/m/file")).mtime >= first

    @pytest.mark.parametrize("path", ["/missing", "/s/file/below"])
    async def test_stat_of_a_missing_path_raises(self, driver: StorageDriver, path: str) -> None:
        await driver.put_content("/s/file", b"x")
        with pytest.raises(PathNotFoundError) as caught:
            await driver.stat(path)
        assert (caught.value.path, caught.value.driver) == (path, driver.name)

    # -- move

    async def test_move_renames_and_creates_parents(self, driver: StorageDriver) -> None:
        await driver.put_content("/uploads/u1/data", b"blob")
        await driver.move("/uploads/u1/data", "/blobs/ab/abcd/data")
        assert await driver.get_content("/blobs/ab/abcd/data") == b"blob"
        with pytest.raises(PathNotFoundError):
            await driver.stat("/uploads/u1/data")

    async def test_move_replaces_an_existing_destination(self, driver: StorageDriver) -> None:
        await driver.put_content("/mv/src", b"new")
        await driver.put_content("/mv/dst", b"old and longer")
        await driver.move("/mv/src", "/mv/dst")
        assert await driver.get_content("/mv/dst") == b"new"
        assert await driver.list("/mv") == ["dst"]

    async def test_move_of_a_missing_source_raises_and_changes_nothing(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFoundError) as caught:
            await driver.move("/nowhere/src", "/elsewhere/dst")
        assert (caught.value.path, caught.value.driver) == ("/nowhere/src", driver.name)
        with pytest.raises(PathNotFoundError):
            await driver.stat("/elsewhere")

    # -- delete

    async def test_delete_a_file_keeps_its_siblings(self, driver: StorageDriver) -> None:
        await driver.put_content("/del/a", b"x")
        await driver.put_content("/del/b", b"y")
        await driver.delete("/del/a")
        assert await driver.list("/del") == ["b"]
        with pytest.raises(PathNotFoundError):
            await driver.get_content("/del/a")

    async def test_delete_a_tree_removes_everything_below_only(self, driver: StorageDriver) -> None:
        for path in ("/t/a/1", "/t/a/b/2", "/t/a/b/c/3", "/t/ab", "/t/ab2/4"):
            await driver.put_content(path, b"x")
        await driver.delete("/t/a")
        for path in ("/t/a", "/t/a/1", "/t/a/b", "/t/a/b/c/3"):
            with pytest.raises(PathNotFoundError):
                await driver.stat(path)
        # A shared name prefix is not a parent (the trap for prefix-based object stores).
        assert sorted(await driver.list("/t")) == ["ab", "ab2"]
        assert await driver.get_content("/t/ab2/4") == b"x"

    @pytest.mark.parametrize("path", ["/missing", "/missing/deeper", "/x/file/below"])
    async def test_delete_of_a_missing_path_raises(self, driver: StorageDriver, path: str) -> None:
        await driver.put_content("/x/file", b"x")
        with pytest.raises(PathNotFoundError) as caught:
            await driver.delete(path)
        assert (caught.value.path, caught.value.driver) == (path, driver.name)

    # -- writer

    async def test_writer_appends_tracks_size_and_keeps_data_on_close(self, driver: StorageDriver) -> None:
        big = os.urandom(MAX_CHUNK + 3)
        w = await driver.writer("/up/u1/data")
        assert w.size == 0
        assert await w.write(b"hello ") == 6
        assert await w.write(big) == len(big)
        assert w.size == 6 + len(big)
        await w.close()
        await w.close()  # idempotent
        assert await driver.get_content("/up/u1/data") == b"hello " + big

        w = await driver.writer("/up/u1/data", append=True)
        assert w.size == 6 + len(big)
        await w.write(b"!")
        assert w.size == 7 + len(big)
        await w.commit()
        assert await driver.get_content("/up/u1/data") == b"hello " + big + b"!"
        assert (await driver.stat("/up/u1/data")).size == 7 + len(big)

    async def test_writer_without_append_truncates(self, driver: StorageDriver) -> None:
        await driver.put_content("/up/data", b"previous content")
        w = await driver.writer("/up/data")
        assert w.size == 0
        await w.write(b"new")
        await w.commit()
        assert await driver.get_content("/up/data") == b"new"

    async def test_writer_rejects_writes_once_finished(self, driver: StorageDriver) -> None:
        for finish in ("close", "commit", "cancel"):
            w = await driver.writer(f"/fin/{finish}")
            await w.write(b"x")
            await getattr(w, finish)()
            with pytest.raises(ValueError):
                await w.write(b"y")

    async def test_writer_cancel_removes_the_file(self, driver: StorageDriver) -> None:
        await driver.put_content("/c/keep", b"x")
        w = await driver.writer("/c/data")
        await w.write(b"partial")
        await w.cancel()
        await w.cancel()  # never raises PathNotFoundError
        with pytest.raises(PathNotFoundError):
            await driver.stat("/c/data")
        assert await driver.list("/c") == ["keep"]

    @pytest.mark.parametrize("path", ["/w/missing", "/missing/data"])
    async def test_writer_append_on_a_missing_path_raises(self, driver: StorageDriver, path: str) -> None:
        await driver.put_content("/w/other", b"x")
        with pytest.raises(PathNotFoundError) as caught:
            await driver.writer(path, append=True)
        assert (caught.value.path, caught.value.driver) == (path, driver.name)
        with pytest.raises(PathNotFoundError):  # nor was anything created
            await driver.stat(path)

    # -- reader

    @pytest.mark.parametrize(("offset", "length", "expected"), [
        (0, None, b"0123456789"), (3, None, b"3456789"), (3, 4, b"3456"), (8, 100, b"89"),
        (10, None, b""), (10, 5, b""), (4, 0, b""),
    ])
    async def test_reader_offset_and_length(
        self, driver: StorageDriver, offset: int, length: int | None, expected: bytes
    ) -> None:
        await driver.put_content("/r/data", b"0123456789")
        assert b"".join(await read(driver, "/r/data", offset, length)) == expected

    @pytest.mark.parametrize(("offset", "length"), [(11, None), (1000, 1), (-1, None), (0, -1)])
    async def test_reader_rejects_offsets_outside_the_content_on_first_iteration(
        self, driver: StorageDriver, offset: int, length: int | None
    ) -> None:
        await driver.put_content("/r/data", b"0123456789")
        stream = driver.reader("/r/data", offset, length)  # lazy: nothing is checked yet
        with pytest.raises(InvalidOffsetError) as caught:
            await anext(stream)
        assert (caught.value.path, caught.value.driver) == ("/r/data", driver.name)

    @pytest.mark.parametrize("path", ["/r/missing", "/r", "/r/data/below"])
    async def test_reader_of_a_missing_path_raises_on_first_iteration(
        self, driver: StorageDriver, path: str
    ) -> None:
        await driver.put_content("/r/data", b"x")
        stream = driver.reader(path)
        with pytest.raises(PathNotFoundError) as caught:
            await anext(stream)
        assert (caught.value.path, caught.value.driver) == (path, driver.name)

    async def test_reader_streams_large_content_in_bounded_chunks(self, driver: StorageDriver) -> None:
        data = os.urandom(5 * MAX_CHUNK + 7)
        await driver.put_content("/big/data", data)
        for offset, length in ((0, None), (MAX_CHUNK - 1, 2 * MAX_CHUNK + 2), (3, len(data))):
            chunks = await read(driver, "/big/data", offset, length)
            assert max(map(len, chunks)) <= MAX_CHUNK
            end = len(data) if length is None else offset + length
            assert b"".join(chunks) == data[offset:end]
        assert len(await read(driver, "/big/data")) >= 6

    # -- local_path

    async def test_local_path_is_none_or_holds_the_content(self, driver: StorageDriver) -> None:
        await driver.put_content("/lp/data", b"sendfile me")
        local = driver.local_path("/lp/data")
        if local is not None:
            with open(local, "rb") as f:
                assert f.read() == b"sendfile me"
