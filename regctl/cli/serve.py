"""``regctl serve``: load the server configuration, apply the flags, run the multi-process server."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from regctl.cli import CliState
    from regctl.config.server import ServerConfig


def _default_workers() -> int:
    # CPUs this process may run on (a container's cpuset), not every CPU of the host.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_addr(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from regctl.config.server import parse_addr

    if value is not None:
        try:
            parse_addr(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return value


@click.command(
    short_help="Run the registry server.",
    epilog="""\b
Examples:
  regctl serve                                  # :5000, storage in /var/lib/registry
  regctl serve --addr 127.0.0.1:5000 --root ./data --delete
  regctl serve /etc/docker/registry/config.yml  # a registry:2 config, as is
  REGISTRY_HTTP_ADDR=:5001 regctl serve -c config.yml --workers 4
  regctl serve --run-as registry /etc/docker/registry/config.yml   # as root: what the server image runs
""",
)
@click.argument("config_arg", metavar="[CONFIG]", required=False, type=click.Path(dir_okay=False))
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    envvar="REGCTL_SERVE_CONFIG",
    show_envvar=True,
    help="Distribution config.yml (version 0.1). Default: $REGISTRY_CONFIGURATION_PATH, else built-in defaults.",
)
@click.option(
    "--addr",
    metavar="HOST:PORT",
    callback=_check_addr,
    help="Listen address, overriding http.addr: :5000 (every interface), 127.0.0.1:5000, [::1]:5000; port 0 picks one.",
)
@click.option(
    "--root",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Store data in DIR with the filesystem driver, overriding the storage section.",
)
@click.option(
    "--workers",
    metavar="N",
    type=click.IntRange(min=1),
    envvar="REGCTL_WORKERS",
    show_envvar=True,
    show_default="number of CPUs",
    help="Worker processes sharing the port.",
)
@click.option("--delete/--no-delete", default=None, help="Allow deleting manifests and blobs (storage.delete.enabled).")
@click.option(
    "--run-as",
    metavar="USER[:GROUP]",
    envvar="REGCTL_SERVE_RUN_AS",
    show_envvar=True,
    help="Started as root: read the configuration, give the storage root to USER if USER cannot write to it, "
    "then serve as USER (names or numbers). Existing data is re-owned only when it belongs to someone else "
    "(data written by registry:2, which runs as root). The server image runs with --run-as registry.",
)
@click.pass_obj
def serve(
    state: CliState,
    config_arg: str | None,
    config_path: str | None,
    addr: str | None,
    root: str | None,
    workers: int | None,
    delete: bool | None,
    run_as: str | None,
) -> None:
    """Serve the OCI Distribution API until SIGTERM or Ctrl-C.

    Reads CNCF Distribution's config.yml, so a registry:2 configuration works unchanged, and so do its
    REGISTRY_* environment variables (REGISTRY_HTTP_ADDR, REGISTRY_STORAGE_DELETE_ENABLED=true, ...).
    Flags override both. Stopping lets requests in flight finish. With http.tls, SIGHUP (or a change of
    the files) makes every worker take up a new certificate and key without dropping a connection.
    """
    from regctl.config.load import load_server_config
    from regctl.registry.server import run

    if config_arg and config_path:
        raise click.UsageError("give the configuration file either as CONFIG or with --config, not both")
    config, warnings = load_server_config(config_arg or config_path, os.environ)
    for warning in warnings:
        state.terminal.display_warning(warning)

    if addr is not None:
        config.http.addr = addr
    if root is not None:
        keep = config.storage.parameters if config.storage.driver == "filesystem" else {}
        config.storage.driver = "filesystem"
        config.storage.parameters = {**keep, "rootdirectory": os.path.abspath(root)}
    if delete is not None:
        config.storage.delete.enabled = delete
    count = workers or _default_workers()
    drop = _privilege_drop(state, run_as, config) if run_as is not None else None

    def listening(url: str) -> None:
        state.terminal.display_info(f"regctl serve: listening on {url} ({count} worker{'s' * (count != 1)})")

    click.get_current_context().exit(run(config, count, on_listening=listening, drop_privileges=drop))


def _privilege_drop(state: CliState, spec: str, config: ServerConfig) -> Callable[[], None] | None:
    """What ``--run-as`` does, for the runner to call at the right moment; None when serving as is."""
    from regctl.registry.server import resolve_user, switch_user, unreadable_files

    user = resolve_user(spec)
    if os.geteuid() == 0 and (blocked := unreadable_files(config.files_read(), user)):
        # registry:2 runs as root and reads root-only keys (the seed's `docker run -v certs:/certs` line);
        # serving unprivileged would fail, so keep serving, as root, and say how to avoid it.
        state.terminal.display_warning(
            f"serving as root: {blocked[0]} is not readable by {user.name} (uid {user.uid}); make it readable by "
            f"that user or group (e.g. chgrp {user.gid} FILE && chmod g+r FILE) to serve unprivileged"
        )
        return None
    root = config.storage.parameters.get("rootdirectory") if config.storage.driver == "filesystem" else None

    def drop() -> None:
        changed = switch_user(user, root)
        if changed:
            state.terminal.display_info(f"regctl serve: gave {len(changed)} path(s) under {root} to {user.name}")
        state.terminal.display_info(f"regctl serve: running as {user.name} (uid {user.uid}, gid {user.gid})")

    return drop
