"""``regctl cert``: the registry's TLS certificate."""

from __future__ import annotations

import click

from regctl.cli.cert.import_ import import_
from regctl.cli.cert.issue import issue
from regctl.cli.cert.renew import renew
from regctl.cli.cert.selfsigned import selfsigned
from regctl.cli.cert.status import status
from regctl.cli.cert.timer import timer
from regctl.cli.cert.trust import trust


@click.group(short_help="Issue, import, renew, inspect and trust the TLS certificate.")
def cert() -> None:
    """The certificate the registry serves (certs/domain.crt and certs/domain.key in the instance): issue one
    from the instance's own CA or from an ACME CA such as Let's Encrypt, import one from another CA, renew
    the ACME one when it is due, see what is installed, make the local Docker engine trust it. A new
    certificate is served at once, without a restart."""


cert.add_command(selfsigned)
cert.add_command(import_)
cert.add_command(issue)
cert.add_command(renew)
cert.add_command(timer)
cert.add_command(status)
cert.add_command(trust)
