"""``regctl htpasswd``: Apache's ``htpasswd``, bcrypt only, for the server image (registry:2 compatibility).

The seed makes its password file with ``docker run --entrypoint htpasswd registry:2 -Bbn testuser
testpassword > auth/htpasswd``; the image's ``/usr/local/bin/htpasswd`` runs this command, so that line
works with regctl's image too. Hidden: on a host, ``regctl adduser`` is the way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from regctl.errors import RegctlError

if TYPE_CHECKING:
    from regctl.cli import CliState

_USAGE = "htpasswd [-cimBD] [-C cost] FILE USER | -b[cmBD] FILE USER PASSWORD | -n[imB] USER | -nb[mB] USER PASSWORD"


@click.command(
    hidden=True,
    short_help="Apache's htpasswd, bcrypt only (the server image's htpasswd).",
    context_settings={"ignore_unknown_options": False},
    epilog="""\b
Examples:
  regctl htpasswd -Bbn testuser testpassword > auth/htpasswd     # the seed's line
  regctl htpasswd -Bc auth/htpasswd alice                         # asks twice
  regctl htpasswd -D auth/htpasswd alice
""",
)
@click.argument("args", nargs=-1, metavar="[FILE] USER [PASSWORD]")
@click.option("-c", "create", is_flag=True, help="Create FILE, replacing it if it exists.")
@click.option("-n", "display", is_flag=True, help="Print the entry to stdout instead of updating a file.")
@click.option("-b", "batch", is_flag=True, help="Take the password from the command line.")
@click.option("-i", "stdin", is_flag=True, help="Read the password from stdin, without asking twice.")
@click.option("-B", "bcrypt", is_flag=True, help="bcrypt (the default, and the only format written).")
@click.option("-C", "cost", type=click.IntRange(4, 17), default=10, show_default=True, help="bcrypt cost.")
@click.option("-D", "delete", is_flag=True, help="Delete USER from FILE.")
@click.option("-m", "md5", is_flag=True, hidden=True)
@click.option("-d", "crypt", is_flag=True, hidden=True)
@click.option("-s", "sha", is_flag=True, hidden=True)
@click.option("-p", "plain", is_flag=True, hidden=True)
@click.pass_obj
def htpasswd(
    state: CliState,
    args: tuple[str, ...],
    create: bool,
    display: bool,
    batch: bool,
    stdin: bool,
    bcrypt: bool,
    cost: int,
    delete: bool,
    md5: bool,
    crypt: bool,
    sha: bool,
    plain: bool,
) -> None:
    """Write a bcrypt htpasswd entry for USER, as Apache's htpasswd -B does: to stdout with -n, else into
    FILE (atomically, keeping its other lines). Other formats (-m, -d, -s, -p) are refused: the registry
    accepts bcrypt only."""
    from regctl.cli._users import read_password
    from regctl.deploy import htpasswd as file

    if md5 or crypt or sha or plain:
        raise RegctlError("only bcrypt (-B) entries are written: the registry refuses MD5, crypt, SHA and plain ones")
    wanted = (0 if display else 1) + 1 + (1 if batch and not delete else 0)
    if len(args) != wanted:
        raise click.UsageError(f"expected {wanted} arguments, got {len(args)}; usage: {_USAGE}")
    path = None if display else Path(args[0])
    user = args[0 if display else 1]
    if delete:
        if path is None:
            raise click.UsageError("-D deletes from a FILE: it cannot go with -n")
        file.delete_user(path, user)
        state.terminal.display_info(f"Deleting password for user {user}")
        return
    file.check_user(user)
    password = args[-1] if batch else read_password(stdin)
    if path is None:
        state.terminal.display_data(file.entry(user, password, cost))
    elif create:
        file.create(path, user, password, cost)
        state.terminal.display_info(f"Adding password for user {user}")
    else:
        updated = file.add_user(path, user, password, replace=True, cost=cost)
        state.terminal.display_info(f"{'Updating' if updated else 'Adding'} password for user {user}")
