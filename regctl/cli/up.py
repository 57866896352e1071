"""``regctl up``: start the registry, or apply a changed regctl.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._runtime import open_runtime, runtime_option

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Start the registry, or apply a changed regctl.yaml.",
    epilog="""\b
Examples:
  regctl up                                   # Docker when the engine answers, else a background process
  regctl up --runtime process                 # no Docker: regctl serve in the background (run/regctl.pid)
  regctl up --base-image python:3.12-slim     # build the server image on this base when it is missing
  regctl -C /srv/registry up                  # the instance in /srv/registry
""",
)
@runtime_option
@click.option(
    "--base-image",
    metavar="IMAGE",
    help="Base of the server image when it has to be built (it needs Python 3.11+). "
    "Default: $REGCTL_BASE_IMAGE, else image.base in regctl.yaml (python:3.12-slim).",
)
@click.pass_obj
def up(state: CliState, runtime: str | None, base_image: str | None) -> None:
    """Render the instance's configuration and run the registry with it, then wait until it is healthy.

    With Docker: builds the server image when it is missing, then creates the container (restart policy
    always, the port published on bind:port, the data volume or directory at /var/lib/registry). Run it
    again after editing regctl.yaml: the container is recreated only when what it runs has changed;
    otherwise nothing restarts.
    """
    result = open_runtime(state, runtime, base_image).up()
    address = result.url.split("://", 1)[1]
    if result.changed:
        state.terminal.display_success(f"Registry is up at {result.url}")
    else:
        state.terminal.display_info(f"Registry at {result.url} is up to date, nothing restarted")
    state.terminal.display_info(f"Push to it:  docker tag IMAGE {address}/IMAGE && docker push {address}/IMAGE")
    state.terminal.display_data(result.url)
