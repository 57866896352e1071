"""``regctl adduser``: a user who may log in to the registry, effective at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._users import htpasswd_file, password_stdin_option, read_password, warn_if_auth_off

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Add a user who may log in.",
    epilog="""\b
Examples:
  regctl adduser alice                                 # asks for the password twice
  echo "$PASSWORD" | regctl adduser ci --password-stdin
""",
)
@click.argument("name")
@password_stdin_option
@click.pass_obj
def adduser(state: CliState, name: str, password_stdin: bool) -> None:
    """Add NAME to auth/htpasswd with a bcrypt hash of the password. The server re-reads the file when it
    changes, so NAME can log in at once: no restart. In token mode, auth.rules say what NAME may do."""
    from regctl.deploy.htpasswd import add_user, check_user

    check_user(name)  # before asking for a password
    _, config, path = htpasswd_file(state, create=True)
    add_user(path, name, read_password(password_stdin))
    state.terminal.display_success(f"Added user {name} to {path.absolute()}: it can log in now")
    warn_if_auth_off(state, config)
