"""``regctl serve --run-as``: which user, what gets re-owned, and the order of the privilege drop.

Nothing here changes the test process's identity: the os calls are recorded by a fake.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import regctl.registry.server
from regctl.cli import cli
from regctl.errors import RegctlError
from regctl.registry import server
from regctl.registry.server import RunAs, ownership_plan, resolve_user, switch_user, writable_by

OTHER = RunAs("someone", 54321, 54321, (54321,))  # owns nothing on this machine


def me() -> RunAs:
    return RunAs("me", os.geteuid(), os.getegid(), tuple(os.getgroups()))


# -- resolve_user -------------------------------------------------------------------------------------------
def test_resolve_user_by_name_and_by_number() -> None:
    root = pwd.getpwuid(0).pw_name
    for spec in (root, "0"):
        user = resolve_user(spec)
        assert (user.name, user.uid, user.gid) == (root, 0, 0)
        assert 0 in user.groups


def test_resolve_user_number_without_passwd_entry() -> None:
    # The server image's `--run-as 1000` on a base with no such user: gid = uid, no other groups.
    assert resolve_user("54321") == RunAs("54321", 54321, 54321, (54321,))
    assert resolve_user("54321:123") == RunAs("54321", 54321, 123, (123,))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-such-user-regctl", "--run-as: no user 'no-such-user-regctl' on this system"),
        ("0:no-such-group-regctl", "--run-as: no group 'no-such-group-regctl' on this system"),
    ],
)
def test_resolve_user_unknown(spec: str, message: str) -> None:
    with pytest.raises(RegctlError) as info:
        resolve_user(spec)
    assert info.value.message == message


# -- writable_by --------------------------------------------------------------------------------------------
def _stat(mode: int, uid: int = 0, gid: int = 0) -> os.stat_result:
    return os.stat_result((stat.S_IFDIR | mode, 0, 0, 2, uid, gid, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "expected"),
    [
        (0o755, 1000, 0, True),  # owner
        (0o555, 1000, 0, False),  # owner without w
        (0o775, 0, 1000, True),  # group
        (0o755, 0, 1000, False),  # group without w
        (0o757, 0, 0, True),  # others
        (0o755, 0, 0, False),  # root's directory: docker's `-v` source
        (0o077, 1000, 0, False),  # owner bits decide for the owner, even when others may
    ],
)
def test_writable_by(mode: int, uid: int, gid: int, expected: bool) -> None:
    assert writable_by(_stat(mode, uid, gid), 1000, (1000,)) is expected


# -- ownership_plan -----------------------------------------------------------------------------------------
def _registry_tree(root: Path) -> list[Path]:
    v2 = root / "docker" / "registry" / "v2"
    blob = v2 / "blobs" / "sha256" / "ab" / "abcd" / "data"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"x")
    (v2 / "repositories" / "lib" / "_layers").mkdir(parents=True)
    return sorted(p for p in (root / "docker").rglob("*"))


def test_plan_for_an_empty_root_the_user_cannot_write(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    assert ownership_plan(tmp_path, OTHER) == [tmp_path]


def test_plan_is_empty_for_the_users_own_tree(tmp_path: Path) -> None:
    _registry_tree(tmp_path)
    assert ownership_plan(tmp_path, me()) == []


def test_plan_for_a_writable_root_holding_someone_elses_data(tmp_path: Path) -> None:
    # registry:2 data (written as root) in a directory the user may write to: the data must be handed over.
    entries = _registry_tree(tmp_path)
    tmp_path.chmod(0o777)
    assert sorted(ownership_plan(tmp_path, OTHER)) == sorted([tmp_path / "docker", *entries])


def test_plan_walks_only_a_tree_whose_top_is_someone_elses(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give files away")
    entries = _registry_tree(tmp_path)
    for path in [tmp_path, tmp_path / "docker", *entries]:
        os.chown(path, OTHER.uid, OTHER.gid)
    deep = tmp_path / "docker" / "registry" / "v2" / "repositories" / "lib" / "_layers" / "root-made"
    deep.write_bytes(b"")
    # The top of the tree is the user's: a large registry starts without a walk, even past a stray file.
    assert ownership_plan(tmp_path, OTHER) == []
    blobs = tmp_path / "docker" / "registry" / "v2" / "blobs"
    os.chown(blobs, 0, 0)
    assert sorted(ownership_plan(tmp_path, OTHER)) == [blobs, deep]


# -- switch_user --------------------------------------------------------------------------------------------
class FakeOs:
    """Records the identity-changing calls switch_user makes, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, euid: int) -> None:
        self.calls: list[tuple[str, Any]] = []
        monkeypatch.setattr(server.os, "geteuid", lambda: euid)
        for name in ("setgroups", "setgid", "setuid"):
            monkeypatch.setattr(server.os, name, self._record(name))
        monkeypatch.setattr(server.os, "chown", self._record("chown"))

    def _record(self, name: str) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args[0] if len(args) == 1 else args[:3]))

        return record


def test_switch_user_as_root_reowns_then_drops_groups_gid_uid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch, euid=0)
    root = tmp_path / "data"
    root.mkdir(mode=0o755)
    user = RunAs("registry", 54321, 54320, (54320, 7))
    assert switch_user(user, str(root)) == [root]
    assert fake.calls == [
        ("chown", (root, 54321, 54320)),
        ("setgroups", [54320, 7]),
        ("setgid", 54320),
        ("setuid", 54321),
    ]


def test_switch_user_creates_a_missing_storage_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch, euid=0)
    root = tmp_path / "var" / "lib" / "registry"
    switch_user(OTHER, str(root))
    assert root.is_dir()
    assert fake.calls[0] == ("chown", (root, OTHER.uid, OTHER.gid))


def test_switch_user_without_filesystem_storage_only_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch, euid=0)
    assert switch_user(OTHER, None) == []
    assert [name for name, _ in fake.calls] == ["setgroups", "setgid", "setuid"]


def test_switch_user_already_that_user_does_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `docker run --user 1000 IMAGE`: the image's --run-as is then a no-op.
    fake = FakeOs(monkeypatch, euid=OTHER.uid)
    assert switch_user(OTHER, str(tmp_path)) == []
    assert fake.calls == []


def test_switch_user_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOs(monkeypatch, euid=1000)
    with pytest.raises(RegctlError) as info:
        switch_user(OTHER, str(tmp_path))
    assert info.value.message == "--run-as someone needs root, but regctl runs as uid 1000"
    assert fake.calls == []


# -- through `regctl serve` ---------------------------------------------------------------------------------
def test_serve_run_as_switches_before_the_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    def fake_switch(user: RunAs, root: str | None) -> list[Path]:
        order.append(f"switch {user.name} {root}")
        return [Path(root or "")]

    def fake_run(
        config: Any, workers: int, *, on_listening: Callable[[str], None], drop_privileges: Callable[[], None]
    ) -> int:
        drop_privileges()  # the runner forks the certificate renewer first, then drops privileges
        order.append("run")
        return 0

    monkeypatch.setattr(regctl.registry.server, "switch_user", fake_switch)
    monkeypatch.setattr(regctl.registry.server, "run", fake_run)
    for name in list(os.environ):
        if name.startswith(("REGISTRY_", "REGCTL_")):
            monkeypatch.delenv(name)
    result = CliRunner().invoke(cli, ["serve", "--root", str(tmp_path), "--run-as", "54321"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert order == [f"switch 54321 {tmp_path}", "run"]
    assert f"regctl serve: gave 1 path(s) under {tmp_path} to 54321\n" in result.stderr
    assert "regctl serve: running as 54321 (uid 54321, gid 54321)\n" in result.stderr


# -- files the server must read after the switch ------------------------------------------------------------
def test_unreadable_files_by_mode_bits(tmp_path: Path) -> None:
    private, shared, public = (tmp_path / n for n in ("key-0600", "key-0640", "cert-0644"))
    for path, mode in ((private, 0o600), (shared, 0o640), (public, 0o644)):
        path.write_text("x")
        path.chmod(mode)
    group_member = RunAs("member", 54321, os.getegid(), (os.getegid(),))
    paths = [str(private), str(shared), str(public), str(tmp_path / "missing")]
    assert server.unreadable_files(paths, OTHER) == [str(private), str(shared)]
    assert server.unreadable_files(paths, group_member) == [str(private)]
    assert server.unreadable_files(paths, me()) == []


def test_serve_stays_root_when_a_key_is_root_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's `-v certs:/certs` with a 0600 root key: registry:2 reads it as root, so must we."""
    key = tmp_path / "domain.key"
    key.write_text("x")
    key.chmod(0o600)
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nstorage: {{inmemory: {{}}}}\nhttp: {{addr: '127.0.0.1:0', tls: "
                      f"{{certificate: {key}, key: {key}}}}}\n")
    switched: list[Any] = []
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(server, "switch_user", lambda *a: switched.append(a) or [])
    monkeypatch.setattr(server, "run", lambda *a, **k: 0)
    monkeypatch.setattr(server, "resolve_user", lambda spec: OTHER)
    result = CliRunner().invoke(cli, ["serve", "--run-as", "someone", str(config)], catch_exceptions=False)
    assert switched == []
    assert f"serving as root: {key} is not readable by someone (uid 54321)" in result.output
