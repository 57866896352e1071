"""Editing htpasswd: bcrypt entries the server accepts, other lines kept, atomic replace, edits serialised."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import bcrypt
import pytest

from regctl.deploy import htpasswd
from regctl.errors import RegctlError
from regctl.registry.auth.htpasswd import Htpasswd, parse


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "htpasswd"


def test_entry_is_apache_bcrypt_at_cost_10() -> None:
    line = htpasswd.entry("alice", "s3cret")
    user, hashed = line.split(":", 1)
    assert user == "alice"
    assert hashed.startswith("$2y$10$") and len(hashed) == 60
    assert bcrypt.checkpw(b"s3cret", hashed.encode())
    assert htpasswd.entry("bob", "x", cost=4).split(":", 1)[1].startswith("$2y$04$")


async def test_the_server_accepts_what_is_written(path: Path) -> None:
    htpasswd.add_user(path, "alice", "s3cret")
    htpasswd.add_user(path, "bob", "pyp4ss")
    server = Htpasswd(str(path))
    assert server.users() == ["alice", "bob"]
    assert await server.verify("alice", "s3cret")
    assert not await server.verify("alice", "pyp4ss")


def test_add_keeps_other_lines_and_writes_0640(path: Path) -> None:
    path.write_text("# ops team\nbob:$2y$05$abcdefghijklmnopqrstuv\n\n")
    assert htpasswd.add_user(path, "alice", "s3cret") is False
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# ops team", "bob:$2y$05$abcdefghijklmnopqrstuv", ""]
    assert lines[3].startswith("alice:$2y$10$")
    assert path.stat().st_mode & 0o777 == 0o640
    assert htpasswd.users(path) == ["bob", "alice"]


def test_mode_is_exact_whatever_the_umask(path: Path) -> None:
    old = os.umask(0o077)
    try:
        htpasswd.add_user(path, "alice", "s3cret")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640


def test_add_existing_user(path: Path) -> None:
    htpasswd.add_user(path, "alice", "one")
    with pytest.raises(RegctlError) as info:
        htpasswd.add_user(path, "alice", "two")
    assert (info.value.message, info.value.hint) == (
        "user alice already exists",
        "change the password with `regctl passwd alice`",
    )
    assert htpasswd.add_user(path, "alice", "two", replace=True) is True
    assert bcrypt.checkpw(b"two", parse(path.read_text())["alice"])


def test_set_password_in_place(path: Path) -> None:
    htpasswd.add_user(path, "alice", "one")
    htpasswd.add_user(path, "bob", "b")
    htpasswd.set_password(path, "alice", "two")
    assert htpasswd.users(path) == ["alice", "bob"]
    assert bcrypt.checkpw(b"two", parse(path.read_text())["alice"])


def test_unknown_users(path: Path) -> None:
    htpasswd.add_user(path, "alice", "one")
    for call in (lambda: htpasswd.set_password(path, "carol", "x"), lambda: htpasswd.require_user(path, "carol")):
        with pytest.raises(RegctlError) as info:
            call()
        assert (info.value.message, info.value.hint) == (
            f"no user carol in {path}",
            "add it with `regctl adduser carol`",
        )
    with pytest.raises(RegctlError) as info:
        htpasswd.delete_user(path, "carol")
    assert (info.value.message, info.value.hint) == (f"no user carol in {path}", "`regctl users` lists those there are")


def test_delete_keeps_the_rest(path: Path) -> None:
    path.write_text("# c\nalice:$2y$x\nbob:$2y$y\n")
    htpasswd.delete_user(path, "alice")
    assert path.read_text() == "# c\nbob:$2y$y\n"


def test_create_replaces_the_file(path: Path) -> None:
    path.write_text("old:$2y$x\n")
    htpasswd.create(path, "alice", "s3cret", cost=4)
    assert htpasswd.users(path) == ["alice"]


def test_no_file_means_no_users(path: Path) -> None:
    assert htpasswd.users(path) == []
    assert htpasswd.not_bcrypt(path) == []


def test_not_bcrypt_entries_are_found(path: Path) -> None:
    path.write_text("alice:$2y$10$x\nbob:$apr1$abc$def\ncarol:{SHA}xyz\n")
    assert htpasswd.not_bcrypt(path) == ["bob", "carol"]


_RULE = "use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a:b", f"invalid user name 'a:b': {_RULE}"),
        ("", f"invalid user name '': {_RULE}"),
        ("@devs", f"invalid user name '@devs': {_RULE}"),
        ("a b", f"invalid user name 'a b': {_RULE}"),
        ("x" * 65, f"invalid user name '{'x' * 65}': {_RULE}"),
        ("Anonymous", "invalid user name 'Anonymous': token rules use it for callers without a login"),
    ],
)
def test_bad_names(name: str, message: str) -> None:
    with pytest.raises(RegctlError) as info:
        htpasswd.check_user(name)
    assert info.value.message == message


def test_good_names() -> None:
    for name in ("alice", "ci-bot_2", "alice@example.com", "A.B", "x" * 64):
        htpasswd.check_user(name)


@pytest.mark.parametrize(
    ("password", "message"),
    [("", "the password is empty"), ("é" * 37, "the password is longer than 72 bytes, which bcrypt cannot check")],
)
def test_bad_passwords(password: str, message: str) -> None:
    with pytest.raises(RegctlError) as info:
        htpasswd.check_password(password)
    assert info.value.message == message


def test_concurrent_adds_lose_nobody(path: Path) -> None:
    names = [f"user{i}" for i in range(12)]
    # Cost 4: the lock, not bcrypt, is under test.
    threads = [threading.Thread(target=htpasswd.add_user, args=(path, n, "pw"), kwargs={"cost": 4}) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(htpasswd.users(path)) == sorted(names)
