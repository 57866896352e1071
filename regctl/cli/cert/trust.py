"""``regctl cert trust``: make the local Docker engine (and skopeo, podman) trust the registry's CA."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState


def _skips_verification(host: str) -> bool:
    """Whether the Docker engine treats ``host`` as an insecure registry without being told: moby hardcodes
    127.0.0.0/8, and `localhost` resolves into it."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        return False


@click.command(
    short_help="Install the CA where the local Docker engine looks for it.",
    epilog="""\b
Examples:
  sudo regctl cert trust                 # /etc/docker/certs.d/HOST:PORT/ca.crt
  regctl cert trust --dir ./certs.d      # elsewhere (a copy for another machine, tests)
""",
)
@click.option(
    "--dir",
    "base",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Install under DIR/HOST:PORT/ instead of /etc/docker/certs.d/HOST:PORT/.",
)
@click.pass_obj
def trust(state: CliState, base: Path | None) -> None:
    """Copy certs/ca.crt (the instance's own CA, or the top of an imported or ACME chain) to
    /etc/docker/certs.d/HOST:PORT/ca.crt, where the Docker engine, skopeo and podman look for the CA of a
    registry. The engine reads it on every connection: no restart. Writing there needs root. With
    tls.acme.directory letsencrypt there is nothing to install: clients trust Let's Encrypt already."""
    from regctl.cli._instance import open_instance
    from regctl.deploy.acme import PUBLIC_DIRECTORIES
    from regctl.deploy.certs import DOCKER_CERTS_D, install_trust
    from regctl.tls.bundle import describe, load_certificates

    layout, config = open_instance(state)
    if config.tls.mode == "acme" and config.tls.acme.directory in PUBLIC_DIRECTORIES:
        state.terminal.display_info(
            f"Nothing to install: the certificate comes from {config.tls.acme.directory}, whose root every "
            "client trusts already"
        )
        return
    destination = install_trust(config, layout, base or DOCKER_CERTS_D)
    ca = load_certificates(destination.read_bytes(), str(destination))[0]
    state.terminal.display_success(
        f"Installed {describe(ca)} as {destination}: the Docker engine trusts it from its next connection"
    )
    if _skips_verification(config.host):
        state.terminal.display_info(
            f"Note: the Docker engine never verifies registries on 127.0.0.0/8 ({config.host} is one), so it uses "
            "this only for a name that resolves elsewhere, such as ::1"
        )
