"""htpasswd files with bcrypt entries (``htpasswd -B``), re-read whenever the file changes.

Distribution checks bcrypt on every request, which costs milliseconds of CPU each time. Here a password
that verified once is remembered (as a salted digest, never in clear) for as long as that user's entry is
unchanged, so a `docker push` of many layers costs one bcrypt check, not one per request. A removed or
changed entry takes effect on the next request. An unknown user is checked against a dummy hash of the
same cost as the real entries, so a wrong user name takes as long as a wrong password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass

import bcrypt

from regctl.errors import RegctlError

log = logging.getLogger("regctl.auth")

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
_DEFAULT_COST = 10


class HtpasswdError(RegctlError):
    """The file cannot be used: unreadable, malformed, or holding an entry that is not bcrypt."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    stamp: tuple[int, int, int, int]
    entries: dict[str, bytes]
    dummy: bytes


def parse(text: str, path: str = "htpasswd") -> dict[str, bytes]:
    """``user:hash`` lines; blank lines and ``#`` comments are skipped; every hash must be bcrypt."""
    entries: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            raise HtpasswdError(f"{path}, line {number}: expected user:hash")
        if not hashed.startswith(_BCRYPT_PREFIXES):
            raise HtpasswdError(
                f"{path}, line {number}: the entry for {user!r} is not bcrypt",
                hint="only bcrypt entries are accepted: recreate it with `regctl adduser` or `htpasswd -B`",
            )
        entries[user] = hashed.encode()
    return entries


class Htpasswd:
    def __init__(self, path: str) -> None:
        self.path = path
        self._snapshot: _Snapshot | None = None
        # (user, digest of password keyed by a per-process secret) -> the hash it verified against
        self._verified: dict[tuple[str, bytes], bytes] = {}
        self._key = secrets.token_bytes(32)
        self._load()

    def _stamp(self) -> tuple[int, int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _load(self) -> _Snapshot:
        try:
            stamp = self._stamp()
            if self._snapshot is not None and self._snapshot.stamp == stamp:
                return self._snapshot
            with open(self.path, encoding="utf-8") as f:
                entries = parse(f.read(), self.path)
        except OSError as exc:
            raise HtpasswdError(f"cannot read htpasswd file {self.path}: {exc.strerror}") from None
        cost = _cost(next(iter(entries.values()), None))
        self._snapshot = _Snapshot(stamp, entries, bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost)))
        return self._snapshot

    def users(self) -> list[str]:
        return sorted(self._load().entries)

    def entry(self, user: str) -> bytes | None:
        """``user``'s hash as the file has it now; None for an unknown user or an unusable file.

        The token service binds refresh tokens to it, so a removed user or a new password revokes them.
        """
        try:
            return self._load().entries.get(user)
        except HtpasswdError:
            return None

    async def verify(self, user: str, password: str) -> bool:
        """True when ``password`` is ``user``'s; a file that became unusable counts as no users."""
        try:
            snapshot = self._load()
        except HtpasswdError as exc:
            log.error("htpasswd file unusable, refusing every login", extra={"detail": exc.message})
            return False
        hashed = snapshot.entries.get(user)
        key = (user, hmac.new(self._key, password.encode(), hashlib.sha256).digest())
        if hashed is not None and self._verified.get(key) == hashed:
            return True
        ok = await asyncio.to_thread(_checkpw, password.encode(), hashed or snapshot.dummy)
        if ok and hashed is not None:
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified[key] = hashed
            return True
        return False


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # bcrypt refuses passwords over 72 bytes; no entry can match one
        return False


def _cost(hashed: bytes | None) -> int:
    if hashed is None:
        return _DEFAULT_COST
    try:
        return int(hashed.split(b"$")[2])
    except (IndexError, ValueError):
        return _DEFAULT_COST


def hash_password(password: str, cost: int = _DEFAULT_COST) -> str:
    """A bcrypt entry value for ``password`` (what ``htpasswd -B`` writes after ``user:``)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
