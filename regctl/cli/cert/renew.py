"""``regctl cert renew``: renew the ACME certificate when it is due, and report it once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.tls.renewal import RenewResult

# How each result reads in the report.
_STATUS = {
    "renewed": "renewed",
    "issued": "issued",
    "not-due": "not due",
    "would-renew": "would renew",
    "failed": "FAILED",
}


@click.command(
    short_help="Renew the ACME certificate when it is due.",
    epilog="""\b
Examples:
  regctl cert renew                  # renews when due; what `regctl cert timer` runs daily
  regctl cert renew --dry-run        # says whether it is due, orders nothing
  regctl cert renew --force          # renews now
  regctl cert renew --json | jq -r '.certificates[].status'
""",
)
@click.option("--force", is_flag=True, help="Renew even when it is not due.")
@click.option("--dry-run", is_flag=True, help="Say what would be renewed; order and change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless something failed (for cron).")
@click.pass_obj
def renew(state: CliState, force: bool, dry_run: bool, as_json: bool, quiet: bool) -> None:
    """Renew the certificate from the ACME CA (tls.mode acme) when it is past its renewal point: when a
    third of its lifetime is left (or tls.acme.renew_days before it expires), earlier when the CA's ARI
    window says so, at once when it is missing or no longer covers every name. A renewed certificate is
    installed as `regctl cert issue` installs it and the running server takes it with SIGHUP, without
    dropping a request.

    Reports every certificate once: renewed, not due, or failed and why. A failure leaves the certificate
    being served as it is. Exits 1 when any failed, or when another renewal (the server's own, with
    tls.acme.auto) holds secrets/acme/renew.lock; 0 otherwise, also when tls.mode is not acme.
    """
    from regctl.cli._instance import open_instance
    from regctl.deploy.acme import renew_certificate

    layout, config = open_instance(state)
    terminal = state.terminal
    results: list[RenewResult] = []
    signalled: str | None = None
    if config.tls.mode == "acme":
        def progress(line: str) -> None:
            if not quiet:
                terminal.display_info(f"  {line}")

        result, signalled = renew_certificate(config, layout, force=force, dry_run=dry_run, progress=progress)
        results.append(result)
    elif not quiet:
        terminal.display_info(f"tls.mode is {config.tls.mode}: no certificate from an ACME CA to renew")
    failed = any(result.failed for result in results)
    if as_json:
        terminal.display_json({"certificates": [_as_json(result) for result in results]})
    elif results and (failed or not quiet):
        _report(state, results)
    if failed:
        click.get_current_context().exit(1)
    if not quiet and any(result.status in ("renewed", "issued") for result in results):
        if signalled is None:
            terminal.display_info("The registry is not running: `regctl up` serves the new certificate")
        else:
            terminal.display_success(f"Sent SIGHUP to the server ({signalled}): it serves the new certificate now")


def _as_json(result: RenewResult) -> dict[str, Any]:
    from regctl.tls.inspect import iso_time

    return {
        "name": result.name,
        "status": result.status,
        "detail": result.detail,
        "hint": result.hint,
        "not_after": iso_time(result.not_after) if result.not_after else None,
    }


def _report(state: CliState, results: list[RenewResult]) -> None:
    rows = [
        (
            result.name,
            _STATUS[result.status],
            f"{result.not_after:%Y-%m-%d}" if result.not_after else "-",
            result.detail,
        )
        for result in results
    ]
    state.terminal.display_columns(("Certificate", "Result", "Valid until", "Detail"), rows)
    for result in results:
        if result.failed and result.hint:
            state.terminal.display_info(f"Hint ({result.name}): {result.hint}")
