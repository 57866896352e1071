"""Every storage driver against the shared suite, then what only the filesystem driver and the factory do.

A new driver adds a fixture and its name to ``driver``'s params; nothing else.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from driver_suite import DriverSuite

from regctl.registry.reference import Digest
from regctl.registry.storage import factory, layout
from regctl.registry.storage.driver import InvalidPathError, PathNotFoundError, StorageDriver
from regctl.registry.storage.filesystem import TEMP_PREFIX, FilesystemDriver
from regctl.registry.storage.inmemory import InMemoryDriver


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def filesystem(root: Path) -> Iterator[StorageDriver]:
    yield factory.create("filesystem", {"rootdirectory": str(root)})
    # Like Distribution's TearDownTest: no test may leave a temp file behind.
    assert _temp_files(root) == []


@pytest.fixture
def inmemory() -> StorageDriver:
    return factory.create("inmemory", {})


@pytest.fixture(params=["filesystem", "inmemory"])
def driver(request: pytest.FixtureRequest) -> StorageDriver:
    return request.getfixturevalue(request.param)


class TestConformance(DriverSuite):
    """The shared suite, once per driver."""


# -- filesystem only

OLD = b"sha256:" + b"0" * 64


def _fail_halfway(real_write: Callable[[int, memoryview], int]) -> Callable[[int, memoryview], int]:
    """An ``os.write`` that writes half its buffer, then fails as a full disk would."""

    def write(fd: int, data: memoryview) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


async def test_interrupted_put_keeps_the_old_content(
    filesystem: StorageDriver, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await filesystem.put_content("/repo/_manifests/tags/v1/current/link", OLD)
    monkeypatch.setattr(os, "write", _fail_halfway(os.write))
    with pytest.raises(OSError, match="No space left"):
        await filesystem.put_content("/repo/_manifests/tags/v1/current/link", b"sha256:" + b"1" * 64)
    with pytest.raises(OSError, match="No space left"):
        await filesystem.put_content("/repo/_manifests/tags/v2/current/link", b"sha256:" + b"2" * 64)
    monkeypatch.undo()

    assert await filesystem.get_content("/repo/_manifests/tags/v1/current/link") == OLD
    assert await filesystem.list("/repo/_manifests/tags/v1/current") == ["link"]
    with pytest.raises(PathNotFoundError):  # never a partial new file
        await filesystem.stat("/repo/_manifests/tags/v2/current/link")
    assert os.listdir(root / "repo/_manifests/tags/v1/current") == ["link"]  # cleaned up, not just hidden


async def test_temp_files_left_by_a_crash_are_neither_listed_nor_addressable(
    filesystem: StorageDriver, root: Path
) -> None:
    await filesystem.put_content("/repo/_layers/sha256/ab/link", OLD)
    stray = root / "repo/_layers/sha256/ab" / f"{TEMP_PREFIX}0123abcd"
    stray.write_bytes(b"sha256:partial")
    assert await filesystem.list("/repo/_layers/sha256/ab") == ["link"]
    with pytest.raises(InvalidPathError):
        await filesystem.get_content(f"/repo/_layers/sha256/ab/{stray.name}")
    stray.unlink()


_D = Digest("sha256", "ab" + "c" * 62)
_H = _D.hex
_LINK = f"sha256:{_H}".encode()
_REPO = "docker/registry/v2/repositories/lib/app"
# Distribution's on-disk names for the calls below, spelled out rather than derived from layout.py.
_DISTRIBUTION_FILES = {
    f"docker/registry/v2/blobs/sha256/ab/{_H}/data": b"{}",
    f"{_REPO}/_layers/sha256/{_H}/link": _LINK,
    f"{_REPO}/_manifests/revisions/sha256/{_H}/link": _LINK,
    f"{_REPO}/_manifests/tags/v1/current/link": _LINK,
    f"{_REPO}/_manifests/tags/v1/index/sha256/{_H}/link": _LINK,
    f"{_REPO}/_uploads/u-1/data": b"partial",
    f"{_REPO}/_uploads/u-1/startedat": b"2024-01-02T03:04:05Z",
}


async def test_writes_exactly_distributions_tree(filesystem: StorageDriver, root: Path) -> None:
    old_umask = os.umask(0)  # so the modes seen are the ones the driver asked for
    try:
        await filesystem.put_content(layout.blob_data(_D), b"{}")
        for path in (layout.layer_link("lib/app", _D), layout.revision_link("lib/app", _D),
                     layout.tag_current_link("lib/app", "v1"), layout.tag_index_link("lib/app", "v1", _D)):
            await filesystem.put_content(path, _LINK)
        w = await filesystem.writer(layout.upload_data("lib/app", "u-1"))
        await w.write(b"partial")
        await w.close()
        await filesystem.put_content(layout.upload_started_at("lib/app", "u-1"), b"2024-01-02T03:04:05Z")
    finally:
        os.umask(old_umask)

    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert files == _DISTRIBUTION_FILES
    for p in root.rglob("*"):
        assert p.stat().st_mode & 0o777 == (0o755 if p.is_dir() else 0o644), p


async def test_serves_a_tree_written_by_distribution(filesystem: StorageDriver, root: Path) -> None:
    for rel, data in _DISTRIBUTION_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    assert await filesystem.list(layout.tags_dir("lib/app")) == ["v1"]
    assert await filesystem.get_content(layout.tag_current_link("lib/app", "v1")) == _LINK
    assert (await filesystem.stat(layout.blob_data(_D))).size == 2
    assert b"".join([c async for c in filesystem.reader(layout.blob_data(_D))]) == b"{}"
    local = filesystem.local_path(layout.blob_data(_D))
    assert local == f"{root}/docker/registry/v2/blobs/sha256/ab/{_H}/data"


@pytest.mark.parametrize("suffix", ["", "/", "/."])
def test_local_path_maps_the_key_under_the_root(root: Path, suffix: str) -> None:
    assert FilesystemDriver(str(root) + suffix).local_path("/a/b") == f"{root}/a/b"


# -- factory


def test_factory_builds_drivers_with_distributions_defaults() -> None:
    assert isinstance(factory.create("inmemory", {}), InMemoryDriver)
    default = factory.create("filesystem", {})
    assert isinstance(default, FilesystemDriver)
    assert default.local_path("/a") == "/var/lib/registry/a"
    assert isinstance(factory.create("filesystem", {"maxthreads": 100}), FilesystemDriver)


@pytest.mark.parametrize(("name", "params", "message"), [
    ("s4", {}, "unknown storage driver 's4' (allowed: filesystem, inmemory)"),
    ("filesystem", {"rootdir": "/x"},
     "storage driver 'filesystem': unknown parameter 'rootdir' (allowed: maxthreads, rootdirectory)"),
    ("inmemory", {"size": 1}, "storage driver 'inmemory': unknown parameter 'size' (allowed: none)"),
    ("filesystem", {"rootdirectory": ""}, "parameter 'rootdirectory' must be a non-empty path"),
    ("filesystem", {"rootdirectory": 5}, "parameter 'rootdirectory' must be a non-empty path"),
    ("filesystem", {"maxthreads": 10}, "parameter 'maxthreads' must be an integer of at least 25"),
])
def test_factory_rejects_bad_names_and_parameters(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        factory.create(name, params)
    assert message in str(caught.value)
