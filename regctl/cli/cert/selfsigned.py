"""``regctl cert selfsigned``: a certificate for the host, from the instance's own CA."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

import click

from regctl.tls import LEAF_DAYS

if TYPE_CHECKING:
    from regctl.cli import CliState

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A DNS name, possibly with a wildcard as its leftmost label (*.example.com).
_DNS_RE = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")


def _check_names(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _DNS_RE.fullmatch(value):
                raise click.BadParameter(f"{value!r} is neither a DNS name nor an IP address", ctx, param) from None
    return values


@click.command(
    short_help="Issue a certificate from the instance's own CA.",
    epilog="""\b
Examples:
  regctl cert selfsigned                              # for the host, localhost, 127.0.0.1 and ::1
  regctl cert selfsigned --san registry.internal --san 10.0.0.5 --days 90
""",
)
@click.option(
    "--days", type=click.IntRange(1, 3650), default=LEAF_DAYS, show_default=True, help="How long it is valid."
)
@click.option(
    "--san",
    "names",
    metavar="NAME",
    multiple=True,
    callback=_check_names,
    help="Another DNS name or IP address it covers (repeat for more).",
)
@click.pass_obj
def selfsigned(state: CliState, days: int, names: tuple[str, ...]) -> None:
    """Issue a certificate for the host in regctl.yaml, localhost, 127.0.0.1 and ::1 (and every --san), signed
    by the instance's own CA, and serve it at once.

    The CA (secrets/ca.key, certs/ca.crt) is made the first time and reused afterwards, so clients that trust
    it (`regctl cert trust`) keep trusting every certificate it issues. Writes certs/domain.crt and
    certs/domain.key, sets tls.mode: selfsigned, and sends SIGHUP to the running server.
    """
    from regctl.cli._instance import open_instance
    from regctl.cli.cert._reload import switch_and_reload
    from regctl.deploy.certs import CA_KEY_MODE, KEY_MODE, issue_selfsigned
    from regctl.tls.bundle import describe, not_after
    from regctl.tls.bundle import names as cert_names

    layout, config = open_instance(state)
    issued = issue_selfsigned(config, layout, days=days, extra_names=names)
    terminal = state.terminal
    if issued.ca_created:
        terminal.display_info(
            f"Created the instance's CA {describe(issued.ca.certificate)}: {layout.ca_certificate.absolute()} "
            f"(its key: {layout.ca_key.absolute()}, mode {CA_KEY_MODE:04o})"
        )
    leaf = issued.leaf.certificate
    terminal.display_info(
        f"Issued {layout.tls_certificate.absolute()} for {', '.join(cert_names(leaf))}, "
        f"valid until {not_after(leaf):%Y-%m-%d} ({days} days)"
    )
    terminal.display_info(f"Wrote {layout.tls_key.absolute()} (mode {KEY_MODE:04o})")
    switch_and_reload(state, layout, config, "selfsigned")
    if issued.ca_created:
        terminal.display_info("Next: regctl cert trust (clients must trust the new CA)")
