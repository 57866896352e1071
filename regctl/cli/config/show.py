"""``regctl config show``: regctl.yaml with its defaults, and the server configuration rendered from it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.deploy.render import Target

_TARGETS: dict[str, Target] = {"docker": "container", "process": "process"}


@click.command(
    short_help="Print the effective configuration.",
    epilog="""\b
Examples:
  regctl config show                       # YAML: regctl.yaml with defaults, then the server's config.yml
  regctl config show --runtime process     # the server config `regctl serve` gets on the host
  regctl -C /srv/registry config show --json | jq .server.http
  regctl config show --show-secrets        # includes http.secret
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: instance_dir, instance, target, server.")
@click.option(
    "--runtime",
    type=click.Choice(list(_TARGETS)),
    help="Show the server configuration for this runtime. Default: the instance's (docker for auto).",
)
@click.option("--show-secrets", is_flag=True, help="Print the HTTP secret instead of masking it.")
@click.pass_obj
def show(state: CliState, as_json: bool, runtime: str | None, show_secrets: bool) -> None:
    """Print the instance's effective configuration to stdout.

    Two YAML documents: regctl.yaml with every default filled in, then the server configuration (CNCF
    Distribution's config.yml) that `regctl up` renders from it. The HTTP secret is masked unless
    --show-secrets is given.
    """
    import yaml

    from regctl.deploy.instance import require_instance
    from regctl.deploy.render import effective_config

    layout = require_instance(state.instance_dir)
    target = _TARGETS[runtime] if runtime else None
    effective = effective_config(layout, target=target, reveal_secrets=show_secrets)
    if as_json:
        state.terminal.stdout.print(json.dumps(effective, indent=2))
        return
    runtime_name = "docker" if effective["target"] == "container" else "process"
    secrets_note = "" if show_secrets else "; secret masked, --show-secrets shows it"
    state.terminal.stdout.print(
        f"# {effective['instance_dir']}/regctl.yaml, with defaults filled in\n"
        + yaml.safe_dump(effective["instance"], sort_keys=False)
        + f"---\n# the server's config.yml for the {runtime_name} runtime{secrets_note}\n"
        + yaml.safe_dump(effective["server"], sort_keys=False),
        end="",
    )
