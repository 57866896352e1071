"""Access control for the API (Distribution's ``registry/auth``): who may do what to which repository.

Every route declares the ``Access`` it needs; an ``AccessController`` either returns a ``Grant`` or raises
``Challenge``, which renders as the spec's 401/403 error with its own ``WWW-Authenticate`` header.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Protocol

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Access:
    """One action on one resource, as the token spec writes scopes: ``repository:alice/app:push``."""

    type: str
    name: str
    action: str

    @property
    def scope(self) -> str:
        return f"{self.type}:{self.name}:{self.action}"


def scopes(accesses: Sequence[Access]) -> str:
    """The ``scope`` value of a challenge: one ``type:name:a,b`` entry per resource, in first-seen order."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for access in accesses:
        actions = grouped.setdefault((access.type, access.name), [])
        if access.action not in actions:
            actions.append(access.action)
    return " ".join(f"{kind}:{name}:{','.join(actions)}" for (kind, name), actions in grouped.items())


@dataclass(frozen=True, slots=True)
class Grant:
    """An authenticated caller. ``may`` answers for accesses beyond the ones asked (the catalog filter)."""

    user: str | None
    patterns: tuple[tuple[str, str, frozenset[str]], ...] = field(default=())
    everything: bool = True

    def may(self, access: Access) -> bool:
        if self.everything:
            return True
        return any(
            kind == access.type and fnmatchcase(access.name, name) and (access.action in actions or "*" in actions)
            for kind, name, actions in self.patterns
        )


ANONYMOUS = Grant(user=None)


class Challenge(Exception):
    """Authentication is missing or wrong (401), or the caller may not do this (403 DENIED)."""

    def __init__(self, header: str, *, denied: bool = False, detail: object = None) -> None:
        super().__init__("access denied" if denied else "authentication required")
        self.header = header
        self.denied = denied
        self.detail = detail


class AccessController(Protocol):
    """Decides access for one request; implementations: htpasswd (``basic.py``) and token (``token.py``)."""

    async def authorize(self, request: web.Request, accesses: Sequence[Access]) -> Grant:
        """A Grant when the request may perform every access (an empty list: just be authenticated).

        Raises Challenge otherwise. Must not block the event loop (bcrypt runs in a thread).
        """
        ...
