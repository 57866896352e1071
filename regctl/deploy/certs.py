"""An instance's TLS files: issue (``cert selfsigned``), import (``cert import``), report (``cert status``),
trust (``cert trust``), and tell the running server to take a new certificate (SIGHUP).

The server serves ``certs/domain.crt`` and ``certs/domain.key`` in both TLS modes; ``selfsigned`` adds the
instance's own CA (``secrets/ca.key``, never mounted into a container, and ``certs/ca.crt``). A new pair is
written key first, then certificate, each atomically: the server (which also polls the files) only switches
once the two match, and keeps serving the old pair meanwhile.
"""

from __future__ import annotations

import datetime
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from regctl.deploy.files import atomic_write, shared_dir
from regctl.deploy.instance import InstanceConfig, InstanceLayout, validate_config, write_config
from regctl.errors import RegctlError
from regctl.tls import LEAF_DAYS, bundle, selfsigned
from regctl.tls.inspect import inspect_chain

# The leaf names every certificate regctl issues carries besides the host: regctl itself and clients on this
# machine reach the registry by them (`regctl status`, a pull from localhost).
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
# The Docker engine looks for a registry's CA here (certs.d/HOST:PORT/ca.crt); skopeo and podman too.
DOCKER_CERTS_D = Path("/etc/docker/certs.d")
KEY_MODE = 0o640  # group-readable: the server image serves in the instance's group (see InstanceLayout.group)
CERT_MODE = 0o644
CA_KEY_MODE = 0o600

TLSMode = Literal["selfsigned", "files", "acme"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def write_file(path: Path, text: str, mode: int) -> None:
    """``atomic_write`` with the operator's error: what could not be written, and who should write it."""
    try:
        atomic_write(path, text, mode, exact=True)
    except OSError as exc:
        raise RegctlError(f"cannot write {path}: {exc.strerror}", "run as the user who owns the instance") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RegctlError(f"cannot read {path}: {exc.strerror}") from None


def prepare_certs_dir(layout: InstanceLayout) -> None:
    shared_dir(layout.certs, layout.group)


# -- regctl cert selfsigned ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SelfSigned:
    leaf: selfsigned.Issued
    ca: selfsigned.Issued
    ca_created: bool


def _instance_ca(
    config: InstanceConfig, layout: InstanceLayout, now: datetime.datetime
) -> tuple[selfsigned.Issued, bool]:
    """The instance's CA, made on first use. Reused afterwards, so clients that trust it keep trusting the
    leaves it issues later."""
    if layout.ca_key.exists() or layout.ca_certificate.exists():
        try:
            ca = selfsigned.load_issued(_read(layout.ca_certificate), _read(layout.ca_key))
        except ValueError:
            raise RegctlError(
                f"{layout.ca_certificate} and {layout.ca_key} are not this instance's CA pair",
                "remove both to make a new CA (clients must then trust it again: `regctl cert trust`)",
            ) from None
        if ca.certificate.not_valid_after_utc > now:
            return ca, False
    ca = selfsigned.make_ca(f"regctl {config.name} CA {secrets.token_hex(4)}", now=now)
    layout.ca_key.parent.mkdir(mode=0o700, exist_ok=True)
    write_file(layout.ca_key, ca.key_pem, CA_KEY_MODE)
    write_file(layout.ca_certificate, ca.certificate_pem, CERT_MODE)
    return ca, True


def issue_selfsigned(
    config: InstanceConfig,
    layout: InstanceLayout,
    *,
    days: int = LEAF_DAYS,
    extra_names: tuple[str, ...] = (),
    now: datetime.datetime | None = None,
) -> SelfSigned:
    """A new leaf for ``host``, LOCAL_NAMES and ``extra_names``, signed by the instance's CA (made first when
    there is none, or when it expired), written to certs/domain.key and certs/domain.crt."""
    moment = now or _now()
    prepare_certs_dir(layout)
    ca, created = _instance_ca(config, layout, moment)
    leaf = selfsigned.make_leaf(ca, [config.host, *LOCAL_NAMES, *extra_names], days=days, now=moment)
    write_file(layout.tls_key, leaf.key_pem, KEY_MODE)
    write_file(layout.tls_certificate, leaf.certificate_pem, CERT_MODE)
    return SelfSigned(leaf, ca, created)


def selfsigned_is_current(config: InstanceConfig, layout: InstanceLayout, now: datetime.datetime | None = None) -> bool:
    """Whether certs/ holds a valid leaf for ``host`` with its key, issued by the instance's CA."""
    try:
        chain = bundle.load_certificates(_read(layout.tls_certificate), str(layout.tls_certificate))
        key = bundle.load_private_key(_read(layout.tls_key), str(layout.tls_key))
        ca = bundle.load_certificates(_read(layout.ca_certificate), str(layout.ca_certificate))[0]
    except RegctlError:
        return False
    leaf = chain[0]
    return (
        bundle.key_matches(leaf, key)
        and bundle.issued_by(leaf, ca)
        and bundle.covers(leaf, config.host)
        and bundle.days_left(leaf, now or _now()) >= bundle.WARN_DAYS
    )


# -- regctl cert import ----------------------------------------------------------------------------------------------
def import_bundle(
    config: InstanceConfig,
    layout: InstanceLayout,
    certificate: Path,
    key: Path,
    chain: Path | None = None,
    now: datetime.datetime | None = None,
) -> bundle.Bundle:
    """Check ``certificate`` (plus ``chain``) with ``key`` (regctl.tls.bundle.check_bundle) and install them:
    certs/domain.crt (the leaf, then its intermediates), certs/domain.key, certs/ca.crt (the chain's top).
    Nothing is written when a check fails."""
    certificates = bundle.load_certificates(_read(certificate), str(certificate))
    if chain is not None:
        certificates += bundle.load_certificates(_read(chain), str(chain))
    private = bundle.load_private_key(_read(key), str(key))
    checked = bundle.check_bundle(certificates, private, config.host, now or _now(), key_source=f"the key {key}")
    prepare_certs_dir(layout)
    write_file(layout.tls_key, bundle.key_pem(private), KEY_MODE)
    write_file(layout.tls_certificate, checked.chain_pem, CERT_MODE)
    write_file(layout.ca_certificate, checked.top_pem, CERT_MODE)
    return checked


# -- regctl cert status ----------------------------------------------------------------------------------------------
def tls_status(config: InstanceConfig, layout: InstanceLayout, now: datetime.datetime | None = None) -> dict[str, Any]:
    """What ``cert status`` shows: the mode, the files, regctl.tls.inspect.inspect_chain of certs/domain.crt
    with certs/domain.key, and ``problems``: one line for each thing a client would trip over."""
    if not layout.tls_certificate.exists():
        hint = {
            "none": "TLS is off (tls.mode: none): `regctl cert selfsigned` or `regctl cert import` turns it on",
            "selfsigned": "issue one with `regctl cert selfsigned`",
            "files": "install one with `regctl cert import --cert FILE --key FILE`",
            "acme": "get one from the CA with `regctl cert issue`",
        }[config.tls.mode]
        raise RegctlError(f"no certificate in {layout.tls_certificate}", hint)
    moment = now or _now()
    chain = bundle.load_certificates(_read(layout.tls_certificate), str(layout.tls_certificate))
    problems: list[str] = []
    try:
        key = bundle.load_private_key(_read(layout.tls_key), str(layout.tls_key))
    except RegctlError as exc:
        key = None
        problems.append(exc.message)
    info = inspect_chain(chain, key, config.host, moment)
    if info["key_matches"] is False:
        problems.append(f"{layout.tls_key} does not match the certificate")
    if info["expired"]:
        problems.append(f"the certificate expired on {info['not_after'][:10]}")
    elif info["days_left"] < bundle.WARN_DAYS:
        problems.append(f"the certificate expires in {info['days_left']} days: renew it soon")
    if not info["covers_host"]:
        problems.append(f"the certificate does not cover {config.host}")
    if not info["chain_ok"]:
        problems.append(f"{layout.tls_certificate} is not in order (each certificate followed by its issuer)")
    return {
        "mode": config.tls.mode,
        "certificate": str(layout.tls_certificate.absolute()),
        "key": str(layout.tls_key.absolute()),
        **info,
        "problems": problems,
    }


# -- regctl cert trust -----------------------------------------------------------------------------------------------
def trust_path(config: InstanceConfig, base: Path = DOCKER_CERTS_D) -> Path:
    """Where the Docker engine looks for the CA of this registry: ``base/HOST:PORT/ca.crt`` (just HOST on
    port 443, as Docker names it)."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    return base / (host if config.port == 443 else f"{host}:{config.port}") / "ca.crt"


def install_trust(config: InstanceConfig, layout: InstanceLayout, base: Path = DOCKER_CERTS_D) -> Path:
    """Copy certs/ca.crt to :func:`trust_path`; returns it. The engine reads certs.d on every connection, so
    it needs no restart."""
    if not layout.ca_certificate.exists():
        raise RegctlError(
            f"no CA certificate in {layout.ca_certificate}",
            "`regctl cert selfsigned` makes one; `regctl cert import` and `regctl cert issue` take the top of "
            "the chain they install",
        )
    text = _read(layout.ca_certificate).decode()
    destination = trust_path(config, base)
    try:
        destination.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomic_write(destination, text, CERT_MODE, exact=True)
    except PermissionError:
        who = "root" if os.geteuid() != 0 else "a user who may write there"
        where = "" if base == DOCKER_CERTS_D else f" --dir {base}"
        raise RegctlError(
            f"cannot write {destination}: permission denied",
            f"{base} belongs to {who}: run `sudo regctl cert trust{where}`, "
            f"or install it yourself: sudo install -D -m 0644 {layout.ca_certificate.absolute()} {destination}",
        ) from None
    except OSError as exc:
        raise RegctlError(f"cannot write {destination}: {exc.strerror}") from None
    return destination


# -- tls.mode in regctl.yaml -----------------------------------------------------------------------------------------
def set_tls_mode(layout: InstanceLayout, mode: TLSMode) -> str:
    """Set ``tls.mode`` in regctl.yaml (rewritten as regctl writes it); returns the mode it had."""
    raw = yaml.safe_load(layout.config.read_text()) or {}
    previous = (raw.get("tls") or {}).get("mode", "none")
    if previous != mode:
        raw.setdefault("tls", {})["mode"] = mode
        write_config(layout, validate_config(raw, hint=f"fix {layout.config}"))
    return str(previous)


# -- the running server ----------------------------------------------------------------------------------------------
def _running_server(config: InstanceConfig, layout: InstanceLayout) -> int | Any | None:
    """This instance's running server: the pid of its process, its container, or None."""
    from regctl.deploy.process_runtime import ProcessRuntime
    from regctl.deploy.progress import NullReporter

    pid = ProcessRuntime(config, layout, NullReporter()).running_pid()
    if pid is not None:
        return pid
    if config.runtime == "process":
        return None
    import docker.errors

    from regctl.deploy.docker_runtime import INSTANCE_LABEL
    from regctl.deploy.runtime import connect

    try:
        client, _ = connect()
        container = client.containers.get(config.name)
    except (RegctlError, docker.errors.DockerException):
        return None  # no engine, no container: nothing runs that could serve the old certificate
    if container.labels.get(INSTANCE_LABEL) != config.name or container.status != "running":
        return None
    return container


def server_running(config: InstanceConfig, layout: InstanceLayout) -> bool:
    """Whether this instance's server runs (the process, or the container)."""
    return _running_server(config, layout) is not None


def reload_server(config: InstanceConfig, layout: InstanceLayout) -> str | None:
    """SIGHUP to this instance's running server, which then loads certs/ anew; returns what was signalled
    (``pid 123``, ``container registry``), None when nothing runs. The server also polls the files every
    few seconds: the signal makes the change immediate."""
    server = _running_server(config, layout)
    if server is None:
        return None
    if isinstance(server, int):
        os.kill(server, signal.SIGHUP)
        return f"pid {server}"
    import docker.errors

    try:
        server.kill(signal="SIGHUP")
    except docker.errors.DockerException:
        return None  # it stopped meanwhile
    return f"container {config.name}"
