"""``regctl cert status``: the certificate the registry serves, and what a client would trip over."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Show the certificate: names, issuer, expiry, chain, key.",
    epilog="""\b
Examples:
  regctl cert status
  regctl cert status --json | jq .days_left
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
@click.pass_obj
def status(state: CliState, as_json: bool) -> None:
    """Show certs/domain.crt: subject, the names it covers (subjectAltName), issuer, expiry and days left,
    the chain it holds, whether certs/domain.key matches it and whether it covers the host in regctl.yaml.
    In tls.mode acme also the CA's directory, the account there, and when `regctl cert renew` renews it
    (`acme` in --json; the CA is not contacted). Each problem is also a warning line; `problems` in --json.
    Exits 0 whatever it finds."""
    from regctl.cli._instance import open_instance
    from regctl.deploy.certs import tls_status

    layout, config = open_instance(state)
    info = tls_status(config, layout)
    if config.tls.mode == "acme":
        from regctl.deploy.acme import acme_status

        info["acme"] = acme_status(config, layout)
    if as_json:
        state.terminal.display_json(info)
        return
    chain = info["chain"]
    order = "each signed by the next" if info["chain_ok"] else "NOT each signed by the next"
    key = {True: "matches", False: "does NOT match", None: "unreadable"}[info["key_matches"]]
    rows = [
        ("Mode", info["mode"]),
        ("Certificate", info["certificate"]),
        ("Subject", info["subject"]),
        ("Names", ", ".join(info["names"]) or "-"),
        ("Issuer", info["issuer"]),
        ("Valid until", f"{info['not_after'].replace('T', ' ').removesuffix('Z')} UTC ({info['days_left']} days left)"),
        ("Chain", f"{len(chain)} certificate{'s' * (len(chain) != 1)}" + (f", {order}" if len(chain) > 1 else "")),
        ("Key", f"{info['key']}: {key}"),
        ("Host", f"{info['host']}: {'covered' if info['covers_host'] else 'NOT covered'}"),
        *_acme_rows(info.get("acme")),
    ]
    # Plain aligned lines, not a table: paths are long, and a table would wrap or cut them.
    width = max(len(name) for name, _ in rows) + 2
    for name, value in rows:
        state.terminal.display_data(f"{name:<{width}}{value}")
    for problem in info["problems"]:
        state.terminal.display_warning(problem)


def _acme_rows(acme: dict[str, Any] | None) -> list[tuple[str, str]]:
    if acme is None:
        return []
    if acme["responder"] == "standalone":
        answered = "regctl, for the time of the order"
    elif acme["challenge"] == "tls-alpn-01":
        answered = "the registry's own TLS port"
    else:
        answered = "the registry's listener"
    renew = acme["renew_at"].replace("T", " ").removesuffix("Z") + " UTC" if acme["renew_at"] else "now"
    by = "the server itself (auto), or `regctl cert renew`" if acme["auto"] else "`regctl cert renew`"
    return [
        ("ACME CA", acme["directory"]),
        ("Account", acme["account"] or "not registered yet"),
        ("Challenge", f"{acme['challenge']}, answered by {answered}"),
        ("Renewal", f"due {renew}, by {by} (the CA's ARI window may move it earlier)"),
    ]
