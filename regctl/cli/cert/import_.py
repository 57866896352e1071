"""``regctl cert import``: install a certificate from another CA, checked, as the seed's `cat` cannot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command(
    "import",
    short_help="Install a certificate and key from another CA.",
    epilog="""\b
Examples:
  regctl cert import --cert domain.crt --key domain.key --chain intermediate-certificates.pem
  regctl cert import --cert fullchain.pem --key privkey.pem        # a bundle in any order
""",
)
@click.option(
    "--cert",
    "certificate",
    metavar="FILE",
    type=_FILE,
    required=True,
    help="The certificate (PEM); it may also hold its intermediates, in any order.",
)
@click.option("--key", metavar="FILE", type=_FILE, required=True, help="Its private key (PEM, unencrypted).")
@click.option("--chain", metavar="FILE", type=_FILE, help="Intermediate certificates (PEM), in any order.")
@click.pass_obj
def import_(state: CliState, certificate: Path, key: Path, chain: Path | None) -> None:
    """Check a certificate, its chain and its key, then install them and serve them at once.

    What the seed does with `cat domain.crt intermediate-certificates.pem > certs/domain.crt`, with the
    checks a client would otherwise fail on: the key matches the certificate; every other certificate leads
    from it to its CA, each signed by the next (they are put in that order, the certificate first); the
    certificate covers the host in regctl.yaml; nothing has expired (under 30 days left: a warning). Writes
    certs/domain.crt (the certificate, then its intermediates), certs/domain.key and certs/ca.crt (the top of
    the chain, for `regctl cert trust`), sets tls.mode: files, and sends SIGHUP to the running server.
    Nothing is written when a check fails.
    """
    from regctl.cli._instance import open_instance
    from regctl.cli.cert._reload import switch_and_reload
    from regctl.deploy.certs import KEY_MODE, import_bundle
    from regctl.tls.bundle import describe, not_after

    layout, config = open_instance(state)
    checked = import_bundle(config, layout, certificate, key, chain)
    terminal = state.terminal
    for warning in checked.warnings:
        terminal.display_warning(warning)
    if checked.reordered:
        terminal.display_info("Put the chain in order: the certificate first, then each certificate's issuer")
    count = len(checked.chain)
    terminal.display_info(
        f"Installed {layout.tls_certificate.absolute()}: {describe(checked.leaf)}, issued by "
        f"{checked.leaf.issuer.rfc4514_string()}, valid until {not_after(checked.leaf):%Y-%m-%d} "
        f"({count} certificate{'s' * (count != 1)})"
    )
    terminal.display_info(f"Wrote {layout.tls_key.absolute()} (mode {KEY_MODE:04o})")
    terminal.display_info(f"Wrote {layout.ca_certificate.absolute()} (the chain's top: {describe(checked.top)})")
    switch_and_reload(state, layout, config, "files")
