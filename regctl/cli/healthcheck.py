"""``regctl healthcheck``: the server image's HEALTHCHECK, over http or https as the server is configured."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from regctl.errors import RegctlError

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(hidden=True, short_help="Check that the local server answers (the image's HEALTHCHECK).")
@click.argument("config_arg", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False))
@click.option("--timeout", type=float, default=4.0, show_default=True, help="Seconds to wait for the answer.")
@click.pass_obj
def healthcheck(state: CliState, config_arg: str | None, timeout: float) -> None:
    """Exit 0 when the server configured by CONFIG (and REGISTRY_* variables, as `regctl serve` reads them)
    answers GET / on its own address with 200; when it requires client certificates (http.tls.clientcas),
    when it answers the TLS handshake. Over https the certificate is not verified: this asks whether it
    answers, not who it is."""
    from regctl.config.load import load_server_config
    from regctl.deploy.runtime import CLIENT_CERTIFICATE_REQUIRED, http_status, server_url

    server, _ = load_server_config(config_arg, os.environ)
    url = f"{server_url(server)}/"
    mutual = server.http.tls is not None and bool(server.http.tls.clientcas)
    status = http_status(url, timeout=timeout, client_certificate_required=mutual)
    if status == 200:
        state.terminal.display_data(f"{url}: 200")
    elif status == CLIENT_CERTIFICATE_REQUIRED:
        state.terminal.display_data(f"{url}: TLS handshake answered (client certificates required)")
    else:
        raise RegctlError(f"{url}: " + (f"answered {status}" if status else "no answer"))
