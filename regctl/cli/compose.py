"""``regctl compose``: write the instance's docker-compose.yml, for operators who run `docker compose`."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Write a docker-compose.yml for `docker compose up -d`.",
    epilog="""\b
Examples:
  regctl compose && docker compose up -d        # in the instance directory
  regctl -C /srv/registry compose -o /srv/compose/registry.yml
  regctl compose -o - | docker compose -f - config
""",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write; - for stdout. Default: docker-compose.yml in the instance directory, where "
    "`docker compose` finds it.",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite FILE even when regctl did not write it.")
@click.pass_obj
def compose(state: CliState, output: Path | None, force: bool) -> None:
    """Write the instance's Compose v2 file: the seed's compose example, from regctl.yaml.

    One service named after the instance (restart: always, the port, the data volume or host directory at
    /var/lib/registry), with the server configuration rendered into rendered/config.yml and mounted
    read-only. A file regctl did not write is never overwritten without --force. Run it again after editing
    regctl.yaml. The image must exist: `regctl image build` makes it.
    """
    from regctl.deploy.instance import load_config, require_instance
    from regctl.deploy.render import export_compose

    layout = require_instance(state.instance_dir)
    config = load_config(layout)
    to_stdout = output == Path("-")
    target = None if to_stdout else output or layout.compose_export
    text = export_compose(config, layout, target, force=force)
    if target is None:
        state.terminal.stdout.print(text, end="")
        return
    state.terminal.display_info(f"Wrote {target.absolute()} (image {config.image.ref}, port {config.port})")
    # Compose finds docker-compose.yml in the current directory by itself.
    found_here = target.name == "docker-compose.yml" and target.absolute().parent.resolve() == Path.cwd().resolve()
    file = "" if found_here else f"-f {shlex.quote(str(target))} "
    state.terminal.display_info(f"Next: docker compose {file}up -d")
