"""``regctl deluser``: remove a user, effective at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._users import htpasswd_file

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Remove a user.",
    epilog="""\b
Examples:
  regctl deluser bob
""",
)
@click.argument("name")
@click.pass_obj
def deluser(state: CliState, name: str) -> None:
    """Remove NAME from auth/htpasswd. The server refuses NAME from its next request: no restart. In token
    mode, NAME's refresh tokens stop working at once, and access tokens already issued expire within
    minutes (tokenserver.expiry, 5 by default)."""
    from regctl.deploy.htpasswd import delete_user

    _, _, path = htpasswd_file(state, create=False)
    delete_user(path, name)
    state.terminal.display_success(f"Removed user {name}: the registry refuses it from now on")
