"""``regctl init``: create an instance directory, asking on a terminal, taking flags and defaults elsewhere."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from regctl.deploy.instance import BASE_IMAGE_ENV, HOME_ENV, InstanceConfig

if TYPE_CHECKING:
    from regctl.cli import CliState

_DEFAULTS = InstanceConfig()
_TLS_MODES = ["none", "selfsigned", "files", "acme"]
_AUTH_MODES = ["none", "htpasswd", "token"]
# The option behind each key, for the hint when a flag's value is wrong.
_OPTIONS = {
    "name": "--name",
    "host": "--host",
    "port": "--port",
    "storage.volume": "--volume",
    "storage.path": "--data-path",
    "image.base": "--base-image",
    "tls.acme": "the --acme-* options",
    "tls.acme.directory": "--acme-directory",
    "tls.acme.email": "--email",
    "tls.acme.domains": "--domain",
    "tls.acme.http_port": "--acme-http-port",
    "tls.acme.tls_port": "--acme-tls-port",
    "tls.acme.eab_kid": "--acme-eab-kid",
}


def stdin_is_tty() -> bool:
    """Whether to ask questions; tests replace it to answer through CliRunner's input."""
    return sys.stdin.isatty()


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
    if values["tls.mode"] == "acme" and "tls.acme.email" not in values:
        email = _ask("tls.acme.email", "Email for the CA's notices (Enter: none)", "")
        if email:
            values["tls.acme.email"] = email
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


def _next_steps(config: InstanceConfig, *, issued: bool) -> list[str]:
    from regctl.deploy.acme import PUBLIC_DIRECTORIES

    steps = []
    if config.tls.mode == "files":
        steps.append("cert import --cert FILE --key FILE [--chain FILE]")
    acme = config.tls.mode == "acme"
    if acme and not issued:
        steps.append("cert issue")
    if config.auth.mode != "none":
        steps.append("adduser NAME")
    if config.tls.mode != "none" and not (acme and config.tls.acme.directory in PUBLIC_DIRECTORIES):
        steps.append("cert trust")
    if acme and not config.tls.acme.auto:
        steps.append("cert timer --write /etc/systemd/system")
    return [*steps, "up"]


def _acme_values(
    tls_mode: str | None,
    hosts: tuple[str, ...],
    port: str | None,
    options: dict[str, Any],
    eab_key_file: Path | None,
    eab_key_stdin: bool,
) -> tuple[dict[str, Any], str | None]:
    """tls.acme's values from the flags, and the EAB HMAC key; UsageError for flags that do not fit."""
    from regctl.deploy.acme import check_eab_hmac

    given = {key: value for key, value in options.items() if value is not None}
    acme_flags = given or len(hosts) > 1 or eab_key_file is not None or eab_key_stdin
    if tls_mode != "acme":
        if acme_flags:
            raise click.UsageError("--email, a second --domain and the --acme-* options need --tls acme")
        return {}, None
    if eab_key_file is not None and eab_key_stdin:
        raise click.UsageError("give --acme-eab-hmac-key-file or --acme-eab-hmac-key-stdin, not both")
    hmac_key: str | None = None
    if eab_key_file is not None:
        hmac_key = eab_key_file.read_text()
    elif eab_key_stdin:
        hmac_key = sys.stdin.read()
    if (hmac_key is None) != ("eab_kid" not in given):
        raise click.UsageError(
            "External Account Binding needs both --acme-eab-kid and the HMAC key "
            "(--acme-eab-hmac-key-file or --acme-eab-hmac-key-stdin)"
        )
    if given.get("auto") and given.get("challenge", "http-01") == "http-01":
        given.setdefault("responder", "registry")  # the server's own listener answers its renewals
    registry_port = str(port or _DEFAULTS.port)
    if given.get("challenge") == "tls-alpn-01" and str(given.get("tls_port") or 443) == registry_port:
        # Only the registry's port is reachable: nothing else can answer there but the registry itself.
        given.setdefault("responder", "registry")
        given.setdefault("tls_port", registry_port)
    if "ca_bundle" in given:
        given["ca_bundle"] = str(Path(given["ca_bundle"]).absolute())
    values = {f"tls.acme.{name}": value for name, value in given.items()}
    if len(hosts) > 1:
        values["tls.acme.domains"] = list(hosts[1:])
    return values, None if hmac_key is None else check_eab_hmac(hmac_key)


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
  regctl init --tls acme --domain registry.example.com --email ops@example.com --yes
  regctl init --tls acme --domain registry.example.com --domain registry2.example.com \\
      --acme-responder registry --acme-auto --yes       # the server answers http-01 on :80 and renews itself
  regctl init --tls acme --domain registry.example.com --port 443 --acme-challenge tls-alpn-01 \\
      --acme-responder registry --acme-auto --yes       # only 443 open: the registry answers on its own port
  regctl init --tls acme --domain registry.example.com --acme-directory https://ca.internal/acme/directory \\
      --acme-eab-kid KID --acme-eab-hmac-key-file hmac.txt --acme-ca-bundle ca.pem --yes
""",
)
@click.argument("directory", metavar="[DIR]", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", metavar="NAME", help=f"Instance name, also the container's. Default: {_DEFAULTS.name}.")
@click.option(
    "--host",
    "--domain",
    "hosts",
    metavar="HOST",
    multiple=True,
    help=f"Host name clients push to. Default: {_DEFAULTS.host}. With --tls acme, repeat it for more names "
    "the certificate covers (tls.acme.domains).",
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
    "files: a certificate from another CA (`regctl cert import`). acme: a certificate from Let's Encrypt or "
    "another ACME CA (requested now, unless --no-issue). Default: none.",
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
@click.option("--email", metavar="EMAIL", help="--tls acme: where the CA may write about the account.")
@click.option(
    "--acme-directory",
    metavar="NAME|URL",
    help="--tls acme: the CA: letsencrypt, letsencrypt-staging or a directory URL. Default: letsencrypt.",
)
@click.option(
    "--acme-challenge",
    type=click.Choice(["http-01", "tls-alpn-01"]),
    help="--tls acme: http-01 (the CA fetches a token over HTTP, port 80), or tls-alpn-01 where only 443 is open. "
    "Default: http-01.",
)
@click.option(
    "--acme-responder",
    type=click.Choice(["standalone", "registry"]),
    help="--tls acme: who answers: regctl for the time of the order (standalone), or the registry itself while "
    "it runs (registry): http-01 on its own plain-HTTP listener on the http-01 port, tls-alpn-01 on its own TLS "
    "port (--acme-tls-port must then be --port). Default: standalone.",
)
@click.option("--acme-http-port", metavar="PORT", help="--tls acme: where http-01 is answered. Default: 80.")
@click.option(
    "--acme-tls-port",
    metavar="PORT",
    help="--tls acme: where tls-alpn-01 is answered (with --acme-responder registry: --port). Default: 443.",
)
@click.option("--acme-eab-kid", metavar="KID", help="--tls acme: External Account Binding key id from the CA.")
@click.option(
    "--acme-eab-hmac-key-file",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="--tls acme: the EAB HMAC key (base64url), kept in secrets/acme-eab-hmac (mode 0600).",
)
@click.option("--acme-eab-hmac-key-stdin", is_flag=True, help="--tls acme: read the EAB HMAC key from stdin.")
@click.option(
    "--acme-ca-bundle",
    metavar="PEM",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="--tls acme: PEM file verifying the CA's own HTTPS (a private CA such as pebble).",
)
@click.option(
    "--acme-auto",
    is_flag=True,
    default=None,
    help="--tls acme: the server renews the certificate by itself (answering http-01 with its own listener).",
)
@click.option("--no-issue", is_flag=True, help="--tls acme: do not request the certificate now (`regctl cert issue`).")
@click.option("-y", "--yes", is_flag=True, help="Take the default for every setting no flag gives; ask nothing.")
@click.option("-f", "--force", is_flag=True, help="Replace an existing regctl.yaml (the secret and data are kept).")
@click.pass_obj
def init(
    state: CliState,
    directory: Path | None,
    name: str | None,
    hosts: tuple[str, ...],
    port: str | None,
    volume: str | None,
    data_path: Path | None,
    delete: bool | None,
    runtime: str | None,
    base_image: str | None,
    tls_mode: str | None,
    auth_mode: str | None,
    insecure: bool | None,
    email: str | None,
    acme_directory: str | None,
    acme_challenge: str | None,
    acme_responder: str | None,
    acme_http_port: str | None,
    acme_tls_port: str | None,
    acme_eab_kid: str | None,
    acme_eab_hmac_key_file: Path | None,
    acme_eab_hmac_key_stdin: bool,
    acme_ca_bundle: Path | None,
    acme_auto: bool | None,
    no_issue: bool,
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

    With --tls acme it then requests the certificate from the CA (Let's Encrypt by default) for the host and
    every further --domain, showing each step; the CA must reach this machine on the challenge port. When
    that fails, the instance stays written and `regctl cert issue` tries again (exit 1); --no-issue skips it.
    """
    from regctl.deploy.init import build_config, check_absent, create_instance
    from regctl.deploy.instance import InstanceLayout, find_instance
    from regctl.deploy.render import storage_path
    from regctl.errors import ConfigError, RegctlError

    if volume is not None and data_path is not None:
        raise click.UsageError("give --volume or --data-path, not both")
    acme_values, eab_hmac_key = _acme_values(
        tls_mode,
        hosts,
        port,
        {
            "email": email,
            "directory": acme_directory,
            "challenge": acme_challenge,
            "responder": acme_responder,
            "http_port": acme_http_port,
            "tls_port": acme_tls_port,
            "eab_kid": acme_eab_kid,
            "ca_bundle": acme_ca_bundle,
            "auto": acme_auto,
        },
        acme_eab_hmac_key_file,
        acme_eab_hmac_key_stdin,
    )
    if no_issue and tls_mode != "acme":
        raise click.UsageError("--no-issue is for --tls acme")
    root = _target(directory, state.instance_dir)
    check_absent(InstanceLayout(root), force=force)  # before asking anything

    given = {
        "name": name,
        "host": hosts[0] if hosts else None,
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
    values = {key: value for key, value in given.items() if value is not None} | acme_values
    try:
        build_config(values)  # a wrong flag fails before any question
    except ConfigError as exc:
        hint = f"fix {_OPTIONS.get(exc.path, 'the options')}"
        if exc.path == "image.base" and click.get_current_context().get_parameter_source("base_image") is (
            ParameterSource.ENVIRONMENT
        ):
            hint = f"fix or unset {BASE_IMAGE_ENV}"
        raise RegctlError(exc.message, hint=hint) from None
    if not yes and stdin_is_tty():
        state.terminal.display_info(f"Creating a regctl instance in {root.absolute()}; Enter takes the default shown.")
        _ask_missing(values)
    config = build_config(values)

    created = create_instance(root, config, force=force, eab_hmac_key=eab_hmac_key)
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
    issued = False
    if config.tls.mode == "acme" and not no_issue:
        from regctl.cli.cert.issue import obtain

        issued = obtain(state, config, layout)
    # Plain `regctl ...` only when discovery from here finds this instance.
    found = find_instance(None)
    here = found is not None and found.resolve() == root.resolve()
    for step in _next_steps(config, issued=issued):
        terminal.display_info(f"Next: regctl {'' if here else f'-C {shlex.quote(str(root))} '}{step}")
    if config.tls.mode == "acme" and not no_issue and not issued:
        terminal.display_info("The instance is written; `regctl cert issue` tries again once the cause is fixed")
        click.get_current_context().exit(1)
