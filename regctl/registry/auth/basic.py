"""HTTP Basic authentication against an htpasswd file (Distribution's ``auth.htpasswd``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from aiohttp import web

from regctl.registry.auth import Access, Challenge, Grant
from regctl.registry.auth.htpasswd import Htpasswd


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """(user, password) from ``Authorization: Basic ...``; None when absent or malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class BasicAuth:
    """Every authenticated user may do everything; nobody else may do anything."""

    def __init__(self, realm: str, htpasswd: Htpasswd) -> None:
        self.realm = realm
        self.htpasswd = htpasswd
        self._challenge = f'Basic realm="{realm}"'

    async def authorize(self, request: web.Request, accesses: Sequence[Access]) -> Grant:
        credentials = basic_credentials(request)
        if credentials is None or not await self.htpasswd.verify(*credentials):
            raise Challenge(self._challenge)
        return Grant(user=credentials[0])
