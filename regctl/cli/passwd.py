"""``regctl passwd``: a user's new password, effective at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._users import htpasswd_file, password_stdin_option, read_password

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Change a user's password.",
    epilog="""\b
Examples:
  regctl passwd alice
  echo "$NEW_PASSWORD" | regctl passwd ci --password-stdin
""",
)
@click.argument("name")
@password_stdin_option
@click.pass_obj
def passwd(state: CliState, name: str, password_stdin: bool) -> None:
    """Give NAME a new password in auth/htpasswd. The old one stops working at the server's next request;
    in token mode, refresh tokens (`docker login`'s stored identity) given for it stop working too."""
    from regctl.deploy.htpasswd import require_user, set_password

    _, _, path = htpasswd_file(state, create=False)
    require_user(path, name)  # before asking for a password
    set_password(path, name, read_password(password_stdin))
    state.terminal.display_success(f"Changed the password of {name}")
