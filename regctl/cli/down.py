"""``regctl down``: stop and remove the registry; the data stays unless --volumes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._runtime import open_runtime, runtime_option
from regctl.errors import RegctlError

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Stop and remove the registry (the data stays).",
    epilog="""\b
Examples:
  regctl down                     # container (or process) gone, images kept for the next `regctl up`
  regctl down --volumes           # and delete every stored image: asks first
  regctl down --volumes --yes     # the same without asking (scripts)
""",
)
@runtime_option
@click.option(
    "--volumes", is_flag=True, help="Also delete the data: the Docker volume, or the data directory. Asks first."
)
@click.option("-y", "--yes", is_flag=True, help="Delete without asking (required with --volumes without a terminal).")
@click.pass_obj
def down(state: CliState, runtime: str | None, volumes: bool, yes: bool) -> None:
    """Stop the registry and remove its container (or stop its process). Pushed images are kept, and the
    next `regctl up` serves them again; --volumes deletes them too."""
    target = open_runtime(state, runtime)
    if volumes and not yes:
        where = target.data_location()
        if not state.terminal.interactive:
            raise RegctlError(
                f"refusing to delete {where} without confirmation",
                "add --yes to delete it, or leave out --volumes to keep the data",
            )
        if not state.terminal.confirm(f"Delete {where} and every image stored in it?"):
            raise RegctlError("nothing was stopped or deleted", "leave out --volumes to keep the data")
    target.down(volumes=volumes)
    state.terminal.display_success("Registry stopped" + (", data deleted" if volumes else ", data kept"))
