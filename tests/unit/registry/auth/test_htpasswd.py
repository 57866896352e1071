"""htpasswd: bcrypt only, re-read on change, remembered verifications, equal cost for unknown users."""

from __future__ import annotations

import os
from pathlib import Path

import bcrypt
import pytest

from regctl.registry.auth import htpasswd as mod
from regctl.registry.auth.htpasswd import Htpasswd, HtpasswdError, hash_password


def _write(path: Path, **users: str) -> None:
    path.write_text("".join(f"{u}:{hash_password(p, 4)}\n" for u, p in users.items()))


async def test_verify(tmp_path):
    path = tmp_path / "htpasswd"
    _write(path, alice="s3cret", bob="pyp4ss")
    file = Htpasswd(str(path))
    assert await file.verify("alice", "s3cret")
    assert not await file.verify("alice", "wrong")
    assert not await file.verify("carol", "s3cret")
    assert file.users() == ["alice", "bob"]


async def test_apache_2y_entries_are_accepted(tmp_path):
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"testpassword", bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)
    path.write_text(f"testuser:{hashed}\n")
    assert await Htpasswd(str(path)).verify("testuser", "testpassword")


@pytest.mark.parametrize("line,message", [
    ("bob:$apr1$abc$def", "the entry for 'bob' is not bcrypt"),
    ("bob:{SHA}abc", "the entry for 'bob' is not bcrypt"),
    ("justaname", "line 1: expected user:hash"),
])
def test_other_hashes_are_refused(tmp_path, line, message):
    path = tmp_path / "htpasswd"
    path.write_text(line + "\n")
    with pytest.raises(HtpasswdError) as caught:
        Htpasswd(str(path))
    assert message in caught.value.message


async def test_changes_take_effect_at_once(tmp_path):
    path = tmp_path / "htpasswd"
    _write(path, alice="s3cret")
    file = Htpasswd(str(path))
    assert await file.verify("alice", "s3cret")
    _write(path, bob="pyp4ss")  # alice removed: her remembered login must not survive
    assert not await file.verify("alice", "s3cret")
    assert await file.verify("bob", "pyp4ss")
    _write(path, bob="n3w")
    assert not await file.verify("bob", "pyp4ss")
    assert await file.verify("bob", "n3w")


async def test_a_verified_password_is_not_checked_again(tmp_path, monkeypatch):
    path = tmp_path / "htpasswd"
    _write(path, alice="s3cret")
    file = Htpasswd(str(path))
    calls = []
    real = mod._checkpw
    monkeypatch.setattr(mod, "_checkpw", lambda p, h: calls.append(p) or real(p, h))
    for _ in range(5):
        assert await file.verify("alice", "s3cret")
    assert len(calls) == 1
    for _ in range(3):
        assert not await file.verify("alice", "wrong")
    assert len(calls) == 4  # failures are always checked


async def test_unknown_user_is_checked_against_a_hash_of_the_same_cost(tmp_path, monkeypatch):
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{hash_password('s3cret', 6)}\n")
    file = Htpasswd(str(path))
    seen = []
    monkeypatch.setattr(mod, "_checkpw", lambda p, h: seen.append(h) or False)
    assert not await file.verify("nobody", "x")
    assert seen and seen[0].startswith(b"$2b$06$")


async def test_unreadable_file_refuses_everyone(tmp_path):
    path = tmp_path / "htpasswd"
    _write(path, alice="s3cret")
    file = Htpasswd(str(path))
    os.unlink(path)
    assert not await file.verify("alice", "s3cret")


async def test_overlong_password_is_just_wrong(tmp_path):
    path = tmp_path / "htpasswd"
    _write(path, alice="s3cret")
    assert not await Htpasswd(str(path)).verify("alice", "x" * 100)
