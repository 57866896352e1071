"""``regctl users``: who may log in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._users import htpasswd_file, warn_if_auth_off

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="List the users who may log in.",
    epilog="""\b
Examples:
  regctl users
  regctl users --json | jq -r '.users[]'
""",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"htpasswd": FILE, "users": [...]} instead.')
@click.pass_obj
def users(state: CliState, as_json: bool) -> None:
    """List the users in auth/htpasswd, one per line, in file order."""
    from regctl.deploy.htpasswd import not_bcrypt
    from regctl.deploy.htpasswd import users as read_users

    _, config, path = htpasswd_file(state, create=False)
    names = read_users(path)
    if as_json:
        state.terminal.display_json({"htpasswd": str(path.absolute()), "users": names})
    else:
        for name in names:
            state.terminal.display_data(name)
        if not names:
            state.terminal.display_info(f"No users in {path.absolute()}: add one with `regctl adduser NAME`")
    for name in not_bcrypt(path):
        state.terminal.display_warning(
            f"the entry of {name} is not bcrypt: the server refuses every login while it is there "
            f"(`regctl passwd {name}` replaces it)"
        )
    warn_if_auth_off(state, config)
