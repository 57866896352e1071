"""``regctl logs``: the server's log, from the container or the process runtime's log file."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from regctl.cli._runtime import open_runtime, runtime_option

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Show the registry server's log.",
    epilog="""\b
Examples:
  regctl logs --tail 50
  regctl logs -f                 # keep printing new lines until Ctrl-C (or the server stops)
""",
)
@runtime_option
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until Ctrl-C or the server stops.")
@click.option("--tail", metavar="N", type=click.IntRange(min=0), help="Only the last N lines. Default: all of it.")
@click.pass_obj
def logs(state: CliState, runtime: str | None, follow: bool, tail: int | None) -> None:
    """Print the registry server's log to stdout, as it wrote it (one access log line per request)."""
    out = sys.stdout.buffer
    try:
        for chunk in open_runtime(state, runtime).logs(follow=follow, tail=tail):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        pass  # Ctrl-C ends --follow; that is how it is meant to stop
