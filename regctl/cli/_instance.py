"""What commands that work on an instance's files share: finding the instance and reading regctl.yaml."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.deploy.instance import InstanceConfig, InstanceLayout


def open_instance(state: CliState) -> tuple[InstanceLayout, InstanceConfig]:
    """The instance (-C, $REGCTL_HOME, or the current directory upwards) and its validated regctl.yaml."""
    from regctl.deploy.instance import load_config, require_instance

    layout = require_instance(state.instance_dir)
    return layout, load_config(layout)
