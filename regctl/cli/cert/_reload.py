"""What ``cert selfsigned`` and ``cert import`` do once the new files are in place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.deploy.certs import TLSMode
    from regctl.deploy.instance import InstanceConfig, InstanceLayout


def switch_and_reload(state: CliState, layout: InstanceLayout, config: InstanceConfig, mode: TLSMode) -> None:
    """Set tls.mode in regctl.yaml, then make the running server take the new certificate: a SIGHUP, unless
    TLS was off, which only `regctl up` turns on (the server's listener is created with or without TLS)."""
    from regctl.deploy.certs import reload_server, set_tls_mode

    terminal = state.terminal
    previous = set_tls_mode(layout, mode)
    if previous != mode:
        terminal.display_info(f"Set tls.mode: {mode} in {layout.config.absolute()} (it was {previous})")
    if previous == "none":
        terminal.display_info("TLS was off: `regctl up` turns it on")
        return
    target = reload_server(config, layout)
    if target is None:
        terminal.display_info("The registry is not running: `regctl up` serves the new certificate")
    else:
        terminal.display_success(f"Sent SIGHUP to the server ({target}): it serves the new certificate now")
