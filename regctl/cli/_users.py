"""What the user commands (adduser, deluser, passwd, users) share: the password, the htpasswd file, the mode."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from regctl.errors import RegctlError

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.deploy.instance import InstanceConfig, InstanceLayout

password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin (one line) instead of asking twice."
)


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line with --password-stdin (`echo s3cret | regctl adduser alice
    --password-stdin`, as `docker login` takes it), else asked twice without echo."""
    if from_stdin:
        text = sys.stdin.read()
        password = text.removesuffix("\n").removesuffix("\r")
        if "\n" in password:
            raise RegctlError("the password on stdin spans several lines", "give it as one line")
        return password
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat it", err=True)
    return password


def htpasswd_file(state: CliState, *, create: bool) -> tuple[InstanceLayout, InstanceConfig, Path]:
    """The instance, its regctl.yaml and its auth/htpasswd; ``create`` makes auth/ (group-readable, see
    regctl.deploy.files.shared_dir) when it is not there yet."""
    from regctl.cli._instance import open_instance
    from regctl.deploy.files import shared_dir

    layout, config = open_instance(state)
    if create:
        shared_dir(layout.auth, layout.group)
    return layout, config, layout.htpasswd


def warn_if_auth_off(state: CliState, config: InstanceConfig) -> None:
    if config.auth.mode == "none":
        state.terminal.display_warning(
            "auth.mode is none in regctl.yaml: the registry lets everyone in; users count once it is "
            "htpasswd or token (then `regctl up`)"
        )
