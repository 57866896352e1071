"""What the runtime commands (up, down, status, logs, restart) share: ``--runtime`` and opening the runtime."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.deploy.runtime import Runtime

runtime_option = click.option(
    "--runtime",
    type=click.Choice(["docker", "process"]),
    help="Where the registry runs: docker (a container) or process (regctl serve in the background). "
    "Default: the runtime key in regctl.yaml; auto picks docker when the engine answers.",
)


def open_runtime(state: CliState, flag: str | None, base_image: str | None = None) -> Runtime:
    """The instance's runtime (the instance from -C / $REGCTL_HOME / the current directory); says which
    runtime was chosen and why, in one line."""
    from regctl.deploy.image import resolve_base_image
    from regctl.deploy.instance import load_config, require_instance
    from regctl.deploy.runtime import select_runtime

    layout = require_instance(state.instance_dir)
    config = load_config(layout)
    base = resolve_base_image(base_image, os.environ, config)
    choice = select_runtime(config, layout, state.terminal, flag=flag, base_image=base)
    state.terminal.display_info(choice.reason)
    return choice.runtime
