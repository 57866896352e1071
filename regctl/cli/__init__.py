"""The ``regctl`` command line: a thin Click layer over the library; errors are rendered here, once."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from regctl import __version__
from regctl.cli.adduser import adduser
from regctl.cli.cert import cert
from regctl.cli.compose import compose
from regctl.cli.config import config
from regctl.cli.deluser import deluser
from regctl.cli.down import down
from regctl.cli.healthcheck import healthcheck
from regctl.cli.htpasswd import htpasswd
from regctl.cli.image import image
from regctl.cli.init import init
from regctl.cli.logs import logs
from regctl.cli.passwd import passwd
from regctl.cli.restart import restart
from regctl.cli.serve import serve
from regctl.cli.status import status
from regctl.cli.terminal import Terminal
from regctl.cli.up import up
from regctl.cli.users import users
from regctl.errors import RegctlError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclasses.dataclass
class CliState:
    """``ctx.obj`` for every command: where output goes and whether to show tracebacks."""

    terminal: Terminal = dataclasses.field(default_factory=Terminal)
    debug: bool = False
    # -C DIR: where the instance (regctl.yaml) is; None means $REGCTL_HOME or the current directory upwards.
    instance_dir: Path | None = None


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RegctlError as exc:
            state = ctx.find_object(CliState) or CliState()
            if state.debug:
                state.terminal.display_traceback()
            state.terminal.display_error(exc.message, exc.hint)
            ctx.exit(1)


@click.group("regctl", cls=_Group, context_settings=CONTEXT_SETTINGS)
@click.option("--debug", is_flag=True, envvar="REGCTL_DEBUG", show_envvar=True, help="Show tracebacks with errors.")
@click.option(
    "-C",
    "instance_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The instance directory (holding regctl.yaml). Default: $REGCTL_HOME, else the current directory "
    "or its nearest parent with a regctl.yaml.",
)
@click.version_option(__version__, "--version", prog_name="regctl", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, debug: bool, instance_dir: Path | None) -> None:
    """Run and operate a private container registry (OCI Distribution, drop-in for registry:2)."""
    state = ctx.ensure_object(CliState)
    state.debug = debug
    state.instance_dir = instance_dir


cli.add_command(init)
cli.add_command(config)
cli.add_command(compose)
cli.add_command(serve)
cli.add_command(up)
cli.add_command(down)
cli.add_command(status)
cli.add_command(logs)
cli.add_command(restart)
cli.add_command(image)
cli.add_command(cert)
cli.add_command(adduser)
cli.add_command(deluser)
cli.add_command(passwd)
cli.add_command(users)
cli.add_command(htpasswd)
cli.add_command(healthcheck)


def main() -> None:
    """Console entry point: Click handles usage errors (exit 2); anything unexpected is one line, exit 1."""
    state = CliState()
    try:
        cli.main(prog_name="regctl", obj=state)
    except Exception as exc:
        if state.debug:
            state.terminal.display_traceback()
        state.terminal.display_error(
            f"unexpected {type(exc).__name__}: {exc}", "this is a bug in regctl; run again with --debug for details"
        )
        sys.exit(1)
