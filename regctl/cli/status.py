"""``regctl status``: state, health, URL, image, uptime, storage used and repository count."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regctl.cli._runtime import open_runtime, runtime_option

if TYPE_CHECKING:
    from regctl.cli import CliState


@click.command(
    short_help="Show whether the registry runs, and how.",
    epilog="""\b
Examples:
  regctl status
  regctl status --json | jq -r .state     # running, exited, stopped, not created, ...
""",
)
@runtime_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")
@click.pass_obj
def status(state: CliState, runtime: str | None, as_json: bool) -> None:
    """Show the registry's state and health, its URL, image and uptime, the storage it uses and how many
    repositories it holds (from GET /v2/_catalog). Exits 0 whatever the state."""
    result = open_runtime(state, runtime).status()
    if as_json:
        state.terminal.display_json(result.to_json())
        return
    rows = [
        ("Runtime", result.runtime + (f" ({result.where})" if result.where else "")),
        ("State", result.state),
        ("Health", result.health or "-"),
        ("URL", result.url),
        ("Image", result.image or "-"),
        ("Uptime", "-" if result.uptime is None else _duration(result.uptime)),
        ("Storage used", "-" if result.storage_bytes is None else _size(result.storage_bytes)),
        ("Repositories", "-" if result.repositories is None else str(result.repositories)),
    ]
    state.terminal.display_table(rows)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
