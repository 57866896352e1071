"""Writing the files regctl owns: created with their final mode, replaced atomically.

A file is never chmod-ed after it is written (Harbor does, which leaves secrets readable for a moment):
``os.open`` gets the mode, so the file is born with it (less the umask, which can only take bits away).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def temp_beside(path: Path) -> Path:
    """A fresh hidden name next to ``path`` (so on its filesystem), for a file renamed over it once complete."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def write_new(
    path: Path, text: str, mode: int, *, exact: bool = False, owner: tuple[int, int] | None = None
) -> None:
    """Create ``path`` with ``mode`` and write ``text``. Raises FileExistsError if it exists.

    ``exact``: ``mode`` whatever the umask, for a file another user must read (the server's group).
    ``owner``: the (uid, gid) to give it, when that is not ours (root replacing another user's file). Both
    are set while the file is still empty."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        if owner is not None and owner != (os.geteuid(), os.getegid()):
            os.fchown(fd, *owner)
        if exact:
            os.fchmod(fd, mode)
        stream.write(text)
        stream.flush()
        os.fsync(fd)


def atomic_write(path: Path, text: str, mode: int, *, exact: bool = False) -> None:
    """Replace ``path`` with ``text``: readers see the old file or the new one, never a part. On failure the
    old file is left as it was. ``exact`` as for :func:`write_new`."""
    temp = temp_beside(path)
    try:
        write_new(temp, text, mode, exact=exact)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def private_dir(path: Path) -> None:
    """Make ``path`` (and its parents) a directory only its owner may enter: mode 0700. mkdir leaves an
    existing directory's mode as it was, so one this user owns is tightened too."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o777 != 0o700 and info.st_uid == os.geteuid():
        os.chmod(path, 0o700)


def shared_dir(path: Path, group: int) -> None:
    """Make ``path`` a directory the server's group may read (``certs/``, ``auth/``): mode 2750 and group
    ``group``. The setgid bit makes every file created in it take that group, whoever creates it, so a file
    of mode 0640 written later (`regctl adduser` as root) stays readable by the server. An existing directory
    is left as it is; a group this user may not give is left to the caller's check."""
    if path.is_dir():
        return
    path.mkdir(mode=0o750)
    # mkdir ignores the setgid bit of its mode on Linux, and the parent's group need not be ``group``.
    with contextlib.suppress(PermissionError):
        os.chown(path, -1, group)
    os.chmod(path, 0o2750)
