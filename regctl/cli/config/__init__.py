"""``regctl config``: look at an instance's configuration."""

from __future__ import annotations

import click

from regctl.cli.config.show import show


@click.group(short_help="Show an instance's configuration.")
def config() -> None:
    """Look at an instance's configuration: regctl.yaml and what regctl derives from it."""


config.add_command(show)
