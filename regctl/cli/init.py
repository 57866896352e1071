"""``regctl init``: create an instance directory, asking on a terminal, taking flags and defaults elsewhere."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from regctl.deploy.instance import BASE_IMAGE_ENV, HOME_ENV, InstanceConfig

if TYPE_CHECKING:
    from regctl.cli import CliState

_DEFAULTS = InstanceConfig()
_TLS_MODES = ["none", "selfsigned", "files"]
_AUTH_MODES = ["none", "htpasswd", "token"]
# The option behind each key, for the hint when a flag's value is wrong.
_OPTIONS = {
    "name": "--name",
    "host": "--host",
    "port": "--port",
    "storage.volume": "--volume",
    "storage.path": "--data-path",
    "image.base": "--base-image",
}


def stdin_is_tty() -> bool:
    """Whether to ask questions; tests replace it to answer through CliRunner's input."""
    return click.get_text_stream("stdin").isatty()


def _ask(key: str, text: str, default: Any) -> Any:
    from regctl.deploy.init import check_value
    from regctl.errors import ConfigError

    def convert(answer: Any) -> Any:
        try:
            return check_value(key, answer)
        except ConfigError as exc:
            raise click.UsageError(exc.message) from None  # click.prompt shows it and asks again

    return click.prompt(text, default=default, value_proc=convert, err=True)


def _ask_data_location(default: str) -> dict[str, str]:
    from regctl.deploy.init import check_value, data_location
    from regctl.errors import ConfigError

    def convert(answer: str) -> dict[str, str]:
        location = data_location(answer.strip(), Path.cwd())
        try:
            for key, value in location.items():
                check_value(key, value)
        except ConfigError as exc:
            raise click.UsageError(exc.message) from None
        return location

    location: dict[str, str] = click.prompt(
        "Data: a Docker volume name, or a host directory (/srv/registry, ./data)",
        default=default,
        value_proc=convert,
        err=True,
    )
    return location


def _ask_missing(values: dict[str, Any]) -> None:
    """Ask for every setting no flag gave, in the order an operator thinks of them."""
    if "name" not in values:
        values["name"] = _ask("name", "Instance name (also the container's)", _DEFAULTS.name)
    if "host" not in values:
        values["host"] = _ask("host", "Host name clients push to", _DEFAULTS.host)
    if "port" not in values:
        values["port"] = _ask("port", "Port", _DEFAULTS.port)
    if "storage.volume" not in values and "storage.path" not in values:
        values.update(_ask_data_location(_DEFAULTS.storage.volume))
    if "delete" not in values:
        values["delete"] = click.confirm("Allow deleting images", default=_DEFAULTS.delete, err=True)
    if "runtime" not in values:
        values["runtime"] = click.prompt(
            "Runtime", default=_DEFAULTS.runtime, type=click.Choice(["auto", "docker", "process"]), err=True
        )
    if "tls.mode" not in values:
        values["tls.mode"] = click.prompt("TLS", default=_DEFAULTS.tls.mode, type=click.Choice(_TLS_MODES), err=True)
    if "auth.mode" not in values:
        values["auth.mode"] = click.prompt(
            "Auth", default=_DEFAULTS.auth.mode, type=click.Choice(_AUTH_MODES), err=True
        )


def _target(directory: Path | None, instance_dir: Path | None) -> Path:
    if directory is not None and instance_dir is not None:
        raise click.UsageError("give the instance directory either as DIR or with -C, not both")
    return directory or instance_dir or Path(os.environ.get(HOME_ENV) or ".")


def _summary(config: InstanceConfig, data: Path | None) -> str:
    where = f"data in {data}" if data else f"data in Docker volume {config.storage.volume}"
    delete = "on" if config.delete else "off"
    extra = "".join(
        f", {what} {mode}" for what, mode in (("TLS", config.tls.mode), ("auth", config.auth.mode)) if mode != "none"
    )
    return (
        f"Instance {config.name}: {config.host}:{config.port}, {where}, delete {delete}, runtime {config.runtime}"
        f"{extra}."
    )


def _next_steps(config: InstanceConfig) -> list[str]:
    steps = []
    if config.tls.mode == "files":
        steps.append("cert import --cert FILE --key FILE [--chain FILE]")
    if config.auth.mode != "none":
        steps.append("adduser NAME")
    if config.tls.mode != "none":
        steps.append("cert trust")
    return [*steps, "up"]


@click.command(
    short_help="Create a registry instance (regctl.yaml).",
    epilog=f"""\b
Examples:
  regctl init                                   # here; asks on a terminal, else takes the defaults
  regctl init --yes                             # every default: port 5000, data in volume regctl-data
  regctl init /srv/registry --port 5001 --data-path /srv/registry/data --delete --yes
  regctl -C /srv/registry init --runtime process --yes
  {BASE_IMAGE_ENV}=debian-python:12 regctl init --yes
  regctl init --domain registry.example.com --tls selfsigned --auth htpasswd --yes
  regctl init --domain registry.example.com --tls files --auth token --yes
""",
)
@click.argument("directory", metavar="[DIR]", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", metavar="NAME", help=f"Instance name, also the container's. Default: {_DEFAULTS.name}.")
@click.option(
    "--host", "--domain", "host", metavar="HOST", help=f"Host name clients push to. Default: {_DEFAULTS.host}."
)
@click.option("--port", metavar="PORT", help=f"Port the registry is published on. Default: {_DEFAULTS.port}.")
@click.option(
    "--volume", metavar="NAME", help=f"Keep the data in this Docker volume. Default: {_DEFAULTS.storage.volume}."
)
@click.option(
    "--data-path",
    metavar="PATH",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the data in this host directory instead of a volume (the seed's -v $(pwd)/data:/var/lib/registry).",
)
@click.option(
    "--delete/--no-delete",
    default=None,
    help="Allow deleting images and blobs (storage.delete.enabled). Default: --no-delete.",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "docker", "process"]),
    help="How `regctl up` runs the server: auto (the default) is the Docker engine when it answers, else a "
    "background process.",
)
@click.option(
    "--base-image",
    metavar="IMAGE",
    envvar=BASE_IMAGE_ENV,
    show_envvar=True,
    help=f"Base of the server image; it needs python3. Default: {_DEFAULTS.image.base}.",
)
@click.option(
    "--tls",
    "tls_mode",
    type=click.Choice(_TLS_MODES),
    help="none: plain HTTP. selfsigned: a CA of the instance's own and a certificate for the host (made now). "
    "files: a certificate from another CA (`regctl cert import`). Default: none.",
)
@click.option(
    "--auth",
    "auth_mode",
    type=click.Choice(_AUTH_MODES),
    help="none: anyone may push and pull. htpasswd: users (`regctl adduser`) may do everything. token: users "
    "log in to the built-in token service, which grants what auth.rules allow. Default: none.",
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Allow auth without TLS on a host that is not loopback (auth.insecure): passwords cross the network "
    "in clear.",
)
@click.option("-y", "--yes", is_flag=True, help="Take the default for every setting no flag gives; ask nothing.")
@click.option("-f", "--force", is_flag=True, help="Replace an existing regctl.yaml (the secret and data are kept).")
@click.pass_obj
def init(
    state: CliState,
    directory: Path | None,
    name: str | None,
    host: str | None,
    port: str | None,
    volume: str | None,
    data_path: Path | None,
    delete: bool | None,
    runtime: str | None,
    base_image: str | None,
    tls_mode: str | None,
    auth_mode: str | None,
    insecure: bool | None,
    yes: bool,
    force: bool,
) -> None:
    """Create a registry instance in DIR (default: -C DIR, else $REGCTL_HOME, else the current directory).

    Writes DIR/regctl.yaml, the one file to edit afterwards, and DIR/secrets/http-secret (mode 0600), then
    what the TLS and auth modes need: for selfsigned the instance's CA (secrets/ca.key, certs/ca.crt) and a
    certificate for the host, localhost, 127.0.0.1 and ::1 (certs/domain.crt, domain.key); for htpasswd and
    token an empty auth/htpasswd; for token the signing key auth/token.key (EC P-256) and its certificate.
    On a terminal it asks for each setting no flag gives, showing the default (Enter takes it); with --yes,
    or when stdin is not a terminal, it asks nothing. Auth without TLS on a host that is not loopback is
    refused unless --insecure. Then `regctl up` starts the registry.
    """
    from regctl.deploy.init import build_config, check_absent, create_instance
    from regctl.deploy.instance import InstanceLayout, find_instance
    from regctl.deploy.render import storage_path
    from regctl.errors import ConfigError, RegctlError

    if volume is not None and data_path is not None:
        raise click.UsageError("give --volume or --data-path, not both")
    root = _target(directory, state.instance_dir)
    check_absent(InstanceLayout(root), force=force)  # before asking anything

    given = {
        "name": name,
        "host": host,
        "port": port,
        "storage.volume": volume,
        "storage.path": str(data_path.expanduser().absolute()) if data_path else None,
        "delete": delete,
        "runtime": runtime,
        "image.base": base_image,
        "tls.mode": tls_mode,
        "auth.mode": auth_mode,
        "auth.insecure": insecure,
    }
    values = {key: value for key, value in given.items() if value is not None}
    try:
        build_config(values)  # a wrong flag fails before any question
    except ConfigError as exc:
        hint = f"fix {_OPTIONS[exc.path]}"
        if exc.path == "image.base" and click.get_current_context().get_parameter_source("base_image") is (
            ParameterSource.ENVIRONMENT
        ):
            hint = f"fix or unset {BASE_IMAGE_ENV}"
        raise RegctlError(exc.message, hint=hint) from None
    if not yes and stdin_is_tty():
        state.terminal.display_info(f"Creating a regctl instance in {root.absolute()}; Enter takes the default shown.")
        _ask_missing(values)
    config = build_config(values)

    created = create_instance(root, config, force=force)
    layout = created.layout
    terminal = state.terminal
    terminal.display_info(f"{'Replaced' if created.replaced else 'Wrote'} {layout.config.absolute()}")
    if created.secret_kept:
        terminal.display_info(f"Kept {layout.secret.absolute()}")
    else:
        terminal.display_info(f"Wrote {layout.secret.absolute()} (mode 0600)")
    for path, mode in created.generated:
        terminal.display_info(f"Wrote {path.absolute()} (mode {mode:04o})")
    for path in created.kept:
        terminal.display_info(f"Kept {path.absolute()}")
    terminal.display_info(_summary(config, storage_path(config, layout)))
    # Plain `regctl ...` only when discovery from here finds this instance.
    found = find_instance(None)
    here = found is not None and found.resolve() == root.resolve()
    for step in _next_steps(config):
        terminal.display_info(f"Next: regctl {'' if here else f'-C {shlex.quote(str(root))} '}{step}")
