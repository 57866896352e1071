"""Operator-facing errors: the library raises them, and only ``regctl.cli`` renders them (one line + a hint).

API errors returned to registry clients live in ``regctl.registry.errors``; these are for the person running
regctl (a bad config, a port already taken).
"""

from __future__ import annotations


class RegctlError(Exception):
    """A failure the operator can act on: ``message`` says what went wrong, ``hint`` what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(RegctlError):
    """A wrong key or value in the server configuration, named by its dotted ``path`` (``http.addr``).

    ``env`` names the environment variable that supplied the value, when one did.
    """

    def __init__(self, path: str, message: str, *, env: str | None = None, hint: str | None = None) -> None:
        where = f"{path} (from {env})" if env else path
        super().__init__(f"{where}: {message}", hint)
        self.path = path
        self.env = env
