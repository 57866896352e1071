"""Editing an htpasswd file (``regctl adduser``, ``deluser``, ``passwd``, ``users``, ``htpasswd``).

Entries are bcrypt (``regctl.registry.auth.htpasswd.hash_password``, cost 10, written ``$2y$`` as Apache
does), the only kind the server accepts. An edit changes one user's line and keeps every other line as it
was (other users, comments, blank lines), then replaces the file atomically, so the server, which re-reads
it when it changes, sees the old file or the new one and never a part. A lock file beside it
(``htpasswd.lock``) serialises edits: two `adduser` at once must not lose one of the users.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

from regctl.deploy.files import atomic_write
from regctl.errors import RegctlError
from regctl.registry.auth.htpasswd import hash_password

# Group-readable: the server image serves as a user of the file's group (regctl.deploy.render, --run-as).
FILE_MODE = 0o640
COST = 10
# bcrypt reads 72 bytes of a password and the bcrypt library refuses more, so a longer one could never log in.
MAX_PASSWORD_BYTES = 72
# Letters, digits and . _ @ -: safe in an htpasswd line (no ':'), in a repository pattern ("{user}/*")
# and in a log line. The first is a letter or digit, so no name reads as "@group" in token rules.
_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# Token rules use this subject for "everyone, even without a login"; a user of that name could not be told apart.
_RESERVED = ("anonymous",)
_BCRYPT = ("$2a$", "$2b$", "$2y$")


def check_user(name: str) -> None:
    """RegctlError when ``name`` cannot be an htpasswd user here."""
    if not _USER_RE.fullmatch(name):
        raise RegctlError(
            f"invalid user name {name!r}: use 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    if name.lower() in _RESERVED:
        raise RegctlError(f"invalid user name {name!r}: token rules use it for callers without a login")


def check_password(password: str) -> None:
    if not password:
        raise RegctlError("the password is empty")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise RegctlError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes, which bcrypt cannot check")


def entry(name: str, password: str, cost: int = COST) -> str:
    """One htpasswd line (without newline) for ``name``: ``name:$2y$10$...``, the form Apache's
    ``htpasswd -B`` writes (``$2y$`` and the bcrypt library's ``$2b$`` are the same algorithm; Apache's own
    tools and older libraries know only the former)."""
    check_user(name)
    check_password(password)
    hashed = hash_password(password, cost)
    return f"{name}:$2y${hashed.removeprefix('$2b$')}"


def _user_of(line: str) -> str | None:
    text = line.strip()
    if not text or text.startswith("#") or ":" not in text:
        return None
    return text.split(":", 1)[0]


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RegctlError(f"cannot read {path}: {reason}") from None


def users(path: Path) -> list[str]:
    """The user names in the file, in file order; none when it does not exist."""
    return [name for line in _read(path) if (name := _user_of(line)) is not None]


def not_bcrypt(path: Path) -> list[str]:
    """Users whose entry is not bcrypt: while one is there the server refuses every login."""
    found = []
    for line in _read(path):
        name = _user_of(line)
        if name is not None and not line.strip().split(":", 1)[1].startswith(_BCRYPT):
            found.append(name)
    return found


def create(path: Path, name: str, password: str, cost: int = COST) -> None:
    """Replace the whole file by one entry (``htpasswd -c``)."""
    line = entry(name, password, cost)
    with _locked(path):
        _write(path, [line])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(f"{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise RegctlError(
            f"cannot write {path.parent}: {exc.strerror}", "run as the user who owns the instance"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write(path: Path, lines: list[str]) -> None:
    try:
        atomic_write(path, "".join(f"{line}\n" for line in lines), FILE_MODE, exact=True)
    except OSError as exc:
        raise RegctlError(f"cannot write {path}: {exc.strerror}", "run as the user who owns the instance") from None


def add_user(path: Path, name: str, password: str, *, replace: bool = False, cost: int = COST) -> bool:
    """Add ``name`` with ``password``; with ``replace``, an existing entry gets the new password in its place.
    Returns whether an entry was replaced. RegctlError when ``name`` exists and not ``replace``."""
    line = entry(name, password, cost)
    with _locked(path):
        lines = _read(path)
        index = next((i for i, text in enumerate(lines) if _user_of(text) == name), None)
        if index is not None and not replace:
            raise RegctlError(f"user {name} already exists", f"change the password with `regctl passwd {name}`")
        if index is None:
            lines.append(line)
        else:
            lines[index] = line
        _write(path, lines)
    return index is not None


def _unknown(path: Path, name: str) -> RegctlError:
    return RegctlError(f"no user {name} in {path}", f"add it with `regctl adduser {name}`")


def require_user(path: Path, name: str) -> None:
    """RegctlError for an unknown user (checked before asking for a new password)."""
    if name not in users(path):
        raise _unknown(path, name)


def set_password(path: Path, name: str, password: str) -> None:
    """Give the existing user ``name`` a new password; RegctlError for an unknown user."""
    line = entry(name, password)
    with _locked(path):
        lines = _read(path)
        index = next((i for i, text in enumerate(lines) if _user_of(text) == name), None)
        if index is None:
            raise _unknown(path, name)
        lines[index] = line
        _write(path, lines)


def delete_user(path: Path, name: str) -> None:
    """Remove ``name``'s entry; RegctlError for an unknown user."""
    with _locked(path):
        lines = _read(path)
        kept = [text for text in lines if _user_of(text) != name]
        if len(kept) == len(lines):
            raise RegctlError(f"no user {name} in {path}", "`regctl users` lists those there are")
        _write(path, kept)
