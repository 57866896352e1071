"""``regctl cert issue``: a certificate from the ACME CA in tls.acme (Let's Encrypt), now."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.deploy.instance import InstanceConfig, InstanceLayout


@click.command(
    short_help="Get a certificate from the ACME CA (Let's Encrypt) now.",
    epilog="""\b
Examples:
  regctl cert issue                  # for the host and tls.acme.domains, from tls.acme.directory
  regctl -C /srv/registry cert issue
""",
)
@click.pass_obj
def issue(state: CliState) -> None:
    """Order a new certificate for the host in regctl.yaml and tls.acme.domains from the CA in
    tls.acme.directory, answer its challenges (tls.acme.challenge, tls.acme.responder), then install it and
    serve it at once, whatever certificate is there now.

    The account key is made the first time (secrets/acme/account.key, mode 0600) and the account registered
    at the CA (with External Account Binding when tls.acme.eab_kid is set). Writes certs/domain.key,
    certs/domain.crt (the certificate, then its intermediates) and certs/ca.crt (the chain's top), sets
    tls.mode: acme, and sends SIGHUP to the running server. When the CA refuses or cannot be reached, the
    error is one line and nothing is written: the installed certificate keeps serving. `regctl cert renew`
    renews it when it is due.
    """
    from regctl.cli._instance import open_instance
    from regctl.cli.cert._reload import switch_and_reload
    from regctl.deploy.acme import as_acme

    layout, _ = open_instance(state)
    config = as_acme(layout)  # checked before the CA is contacted; tls.mode changes once a certificate is in
    if not obtain(state, config, layout):
        click.get_current_context().exit(1)
    switch_and_reload(state, layout, config, "acme")


def obtain(state: CliState, config: InstanceConfig, layout: InstanceLayout) -> bool:
    """Issue and install, showing the CA's progress; on failure the error, what keeps serving, and False.
    Shared with `regctl init --tls acme`."""
    from regctl.deploy.acme import issue_certificate
    from regctl.deploy.render import acme_domains
    from regctl.errors import RegctlError
    from regctl.tls.bundle import load_certificates, names

    terminal = state.terminal
    terminal.display_info(
        f"Requesting a certificate for {', '.join(acme_domains(config))} from {config.tls.acme.directory}"
    )
    try:
        issued = issue_certificate(config, layout, progress=lambda line: terminal.display_info(f"  {line}"))
    except RegctlError as exc:
        terminal.display_error(exc.message, exc.hint)
        if layout.tls_certificate.is_file():
            terminal.display_info(f"Nothing changed: {layout.tls_certificate.absolute()} keeps serving")
        return False
    leaf = load_certificates(issued.fullchain_pem.encode(), "the issued chain")[0]
    terminal.display_info(
        f"Installed {layout.tls_certificate.absolute()} for {', '.join(names(leaf))}, issued by "
        f"{leaf.issuer.rfc4514_string()}, valid until {issued.not_after:%Y-%m-%d}"
    )
    return True
