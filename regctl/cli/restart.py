"""``regctl restart``: restart the running registry with its current configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._runtime import open_runtime, runtime_option

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Restart the running registry.",
    epilog="""\b
Examples:
  regctl restart
  regctl up          # instead, after editing regctl.yaml: applies the change (restart only re-runs)
""",
)
@runtime_option
@click.pass_obj
def restart(state: CliState, runtime: str | None) -> None:
    """Stop the running registry and start it again with the same configuration, then wait until it is
    healthy. Requests in flight finish first."""
    open_runtime(state, runtime).restart()
    state.terminal.display_success("Registry restarted")
