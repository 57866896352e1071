"""``regctl cert timer``: a systemd timer (or a cron line) running ``regctl cert renew`` daily."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Render a systemd timer or cron line running `cert renew` daily.",
    epilog="""\b
Examples:
  regctl cert timer                                  # print the service and timer
  sudo regctl cert timer --write /etc/systemd/system
  regctl cert timer --user --write ~/.config/systemd/user
  (crontab -l; regctl cert timer --cron) | crontab -
  sudo regctl cert timer --cron --write /etc/cron.d
""",
)
@click.option("--cron", is_flag=True, help="A cron line instead of systemd units.")
@click.option(
    "--write",
    "directory",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the files into DIR (/etc/systemd/system, ~/.config/systemd/user, /etc/cron.d) instead of "
    "printing them.",
)
@click.option("--user", "user_units", is_flag=True, help="systemd user units (`systemctl --user`), not system ones.")
@click.pass_obj
def timer(state: CliState, cron: bool, directory: Path | None, user_units: bool) -> None:
    """Render what runs `regctl -C <instance> cert renew` once a day, with the absolute paths of this regctl
    and of the instance: a systemd service (oneshot, as the instance directory's owner, allowed to bind a
    challenge port below 1024) and a timer (daily, RandomizedDelaySec=12h, Persistent=true so a missed run
    happens at boot), or with --cron a cron line at a time of day fixed per instance (with --write DIR, an
    /etc/cron.d file naming the user). Prints them, or writes them into DIR (mode 0644) with the commands
    that enable them. `cert renew` only renews what is due, so running it daily is cheap.
    """
    from regctl.cli._instance import open_instance
    from regctl.deploy.timer import cron_entry, systemd_units, unit_name, write_files

    if cron and user_units:
        raise click.UsageError("--user is for systemd units; with --cron, print the line for your crontab")
    layout, config = open_instance(state)
    terminal = state.terminal
    if config.tls.mode != "acme":
        terminal.display_warning(f"tls.mode is {config.tls.mode}: `cert renew` has nothing to renew until it is acme")
    elif config.tls.acme.auto:
        terminal.display_warning("tls.acme.auto is true: the server renews by itself; a timer is a second chance")
    files = [cron_entry(config, layout, system=directory is not None)] if cron else systemd_units(
        config, layout, user_units=user_units
    )
    if directory is None:
        for index, file in enumerate(files):
            if len(files) > 1:
                if index:
                    terminal.display_data("")
                terminal.display_data(f"# {file.name}")
            terminal.display_data(file.text.rstrip("\n"))
        return
    for path in write_files(directory, files):
        terminal.display_info(f"Wrote {path}")
    if cron:
        terminal.display_info("cron reads it within a minute: nothing to enable")
        return
    systemctl = "systemctl --user" if user_units else "systemctl"
    terminal.display_info(f"Next: {systemctl} daemon-reload && {systemctl} enable --now {unit_name(config)}.timer")
    if user_units:
        terminal.display_info("User units run while you are logged in, unless: loginctl enable-linger")
