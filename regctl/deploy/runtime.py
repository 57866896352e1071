"""Where an instance's registry runs, behind one small interface.

- ``docker`` (:mod:`regctl.deploy.docker_runtime`): a container of the server image on the Docker engine.
- ``process`` (:mod:`regctl.deploy.process_runtime`): ``regctl serve`` in the background on this host, for
  machines without Docker; it needs nothing but regctl.

``auto`` (the default) picks docker when the engine answers a ping, otherwise process. A server process of
the instance that is already running wins over the ``runtime`` key and auto (not over ``--runtime``), so
``status``/``logs``/``down`` find what ``up --runtime process`` started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import re
import shutil
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from regctl.config.server import ServerConfig, join_addr, parse_addr
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.deploy.progress import Reporter
from regctl.errors import RegctlError

if TYPE_CHECKING:
    import docker

RuntimeName = Literal["docker", "process"]
# How long `up`/`restart` wait for the registry to become healthy.
READY_TIMEOUT = 90.0
# How long the engine may take to answer the ping that decides `auto`.
PING_TIMEOUT = 3.0


@dataclasses.dataclass(frozen=True)
class Status:
    """What ``regctl status`` shows; None where a value cannot be known (e.g. storage of a stopped container)."""

    runtime: RuntimeName
    state: str  # running, exited, restarting, stopped, not created, ...
    health: str | None  # healthy, unhealthy, starting; None without a check (not running)
    url: str
    image: str | None
    started_at: datetime.datetime | None
    storage_bytes: int | None
    repositories: int | None
    where: str | None  # container id or pid

    @property
    def uptime(self) -> float | None:
        if self.started_at is None or self.state != "running":
            return None
        return max(0.0, (datetime.datetime.now(datetime.UTC) - self.started_at).total_seconds())

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["started_at"] = self.started_at.isoformat() if self.started_at else None
        data["uptime_seconds"] = None if self.uptime is None else round(self.uptime)
        return data


@dataclasses.dataclass(frozen=True)
class UpResult:
    changed: bool  # False: it was running with this exact configuration, nothing was restarted
    url: str


class Runtime(Protocol):
    """One way of running an instance. Every method raises RegctlError (one line and a hint) on failure."""

    name: RuntimeName

    def up(self) -> UpResult:
        """Render the instance and make the registry run with it, then wait until it is healthy. Running
        already with the same configuration, it changes nothing (``changed`` False)."""

    def down(self, volumes: bool) -> None:
        """Stop and remove the registry; the data stays unless ``volumes`` (the caller has asked). Nothing
        running is not an error."""

    def status(self) -> Status:
        """The registry's state; a registry that was never started is a Status with state "not created"."""

    def logs(self, follow: bool, tail: int | None) -> Iterator[bytes]:
        """The server's log: the last ``tail`` lines (all when None), then, with ``follow``, new output until
        the server stops."""

    def restart(self) -> None:
        """Restart the running registry with its current configuration and wait until it is healthy; raises
        when it is not running."""

    def data_location(self) -> str:
        """What ``down --volumes`` deletes, for the question asked first (a volume name or a directory)."""


@dataclasses.dataclass(frozen=True)
class Choice:
    runtime: Runtime
    reason: str  # one line for the operator: which runtime and why


def select_runtime(
    config: InstanceConfig,
    layout: InstanceLayout,
    reporter: Reporter,
    *,
    flag: str | None = None,
    base_image: str | None = None,
) -> Choice:
    """The runtime for this instance: ``flag`` (``--runtime``), else a server process of this instance that is
    running (so ``status``/``logs``/``down`` find what ``up --runtime process`` started), else the ``runtime``
    key, else auto (docker when the engine answers).

    Forcing docker with an engine that does not answer raises RegctlError. ``base_image`` is what docker
    builds the server image on when it is missing (default: ``image.base``).
    """
    from regctl.deploy.process_runtime import ProcessRuntime

    process = ProcessRuntime(config, layout, reporter)
    if flag == "process":
        return Choice(process, "Runtime: process (--runtime process)")
    if flag == "docker":
        return Choice(_docker(config, layout, reporter, connect()[0], base_image), "Runtime: docker (--runtime docker)")

    pid = process.running_pid()
    if pid is not None:
        switch = "; `regctl down` first to switch to docker" if config.runtime == "docker" else ""
        return Choice(process, f"Runtime: process (this instance's server is running as pid {pid}{switch})")
    why = f"runtime: {config.runtime} in {layout.config.name}"
    if config.runtime == "process":
        return Choice(process, f"Runtime: process ({why})")
    if config.runtime == "docker":
        return Choice(_docker(config, layout, reporter, connect()[0], base_image), f"Runtime: docker ({why})")
    try:
        client, engine = connect()
    except RegctlError as exc:
        return Choice(process, f"Runtime: process ({exc.message})")
    return Choice(_docker(config, layout, reporter, client, base_image), f"Runtime: docker (engine at {engine})")


def _docker(
    config: InstanceConfig, layout: InstanceLayout, reporter: Reporter, client: Any, base_image: str | None
) -> Runtime:
    from regctl.deploy.docker_runtime import DockerRuntime

    return DockerRuntime(config, layout, reporter, client, base_image or config.image.base)


def connect(timeout: float = PING_TIMEOUT) -> tuple[docker.DockerClient, str]:
    """A client of the Docker engine from the environment (DOCKER_HOST, ...) that answered a ping, and the
    engine's address. Raises RegctlError "Docker engine not reachable" otherwise."""
    import docker
    import docker.errors

    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=int(max(1, timeout)))
        client.ping()
    except docker.errors.DockerException as exc:
        raise RegctlError(
            f"Docker engine not reachable at {where}: {short_reason(exc)}",
            "start dockerd (or fix DOCKER_HOST), or run without Docker: --runtime process",
        ) from None
    # Builds and stops take longer than a ping: from now on allow minutes per response.
    client.api.timeout = 600
    return client, where


def short_reason(exc: BaseException) -> str:
    """The useful end of a docker/requests error chain ("connection refused", "permission denied")."""
    text = str(exc)
    for known in ("Connection refused", "Permission denied", "No such file or directory", "timed out"):
        if known.lower() in text.lower():
            return known.lower()
    return text.strip().splitlines()[-1] if text.strip() else type(exc).__name__


# -- shared by both runtimes ------------------------------------------------------------------------------------
def _scheme(config: InstanceConfig) -> str:
    return "http" if config.tls.mode == "none" else "https"


def registry_url(config: InstanceConfig) -> str:
    """The URL clients use: ``https://HOST:PORT`` once TLS is on, else ``http://HOST:PORT``."""
    return f"{_scheme(config)}://{join_addr(config.host, config.port)}"


def local_url(config: InstanceConfig) -> str:
    """Where regctl itself reaches the registry on this host: the bound address, or loopback for a wildcard."""
    bind = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(config.bind, config.bind)
    return f"{_scheme(config)}://{join_addr(bind, config.port)}"


def check_port_free(bind: str, port: int) -> None:
    """Raise RegctlError when something on this host already listens on ``bind:port``."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR: connections in TIME_WAIT must not count as "taken"; a listener still does on Linux.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError as exc:
            raise port_error(bind, port, exc.errno) from None


def port_error(bind: str, port: int, code: int | None = errno.EADDRINUSE) -> RegctlError:
    if code == errno.EACCES:
        return RegctlError(f"port {port} on {bind} needs privileges", "choose a port above 1024 (port in regctl.yaml)")
    if code == errno.EADDRNOTAVAIL:
        return RegctlError(f"{bind} is not an address of this host", "fix bind in regctl.yaml (0.0.0.0 for every one)")
    return RegctlError(
        f"port {port} on {bind} is already in use",
        "stop whatever listens there (see `ss -ltnp`), or choose another port in regctl.yaml",
    )


_PORT_TAKEN_RE = re.compile(r"port is already allocated|address already in use", re.IGNORECASE)


def is_port_taken_message(text: str) -> bool:
    """Whether a Docker engine error says the published port is taken."""
    return bool(_PORT_TAKEN_RE.search(text))


# What http_status answers for a server that requires client certificates (mutual TLS) and completed the TLS
# handshake with regctl, which has none: it is up and speaking TLS. nginx uses 496 ("SSL Certificate Required").
CLIENT_CERTIFICATE_REQUIRED = 496
# The alerts a TLS 1.2 server sends a client without a certificate (OpenSSL: handshake_failure; others:
# bad_certificate), and TLS 1.3's certificate_required.
_NO_CLIENT_CERTIFICATE = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "SSLV3_ALERT_BAD_CERTIFICATE",
}


def _unverified() -> ssl.SSLContext:
    # This asks whether the server answers, not who it is: an imported certificate need not name the loopback
    # address regctl reaches it by.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _opener(url: str) -> urllib.request.OpenerDirector:
    """Proxies from the environment are ignored: the registry is on this host. https is not verified."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https:"):
        handlers.append(urllib.request.HTTPSHandler(context=_unverified()))
    return urllib.request.build_opener(*handlers)


def _tls_handshake(url: str, timeout: float) -> bool:
    """Whether the https server at ``url`` answers a TLS handshake from a client without a certificate: it
    completes (TLS 1.3 refuses such a client only afterwards, and aiohttp then just closes) or ends in the
    alert that refuses the missing certificate (TLS 1.2)."""
    parts = urllib.parse.urlsplit(url)
    try:
        with (
            socket.create_connection((parts.hostname or "", parts.port or 443), timeout) as raw,
            _unverified().wrap_socket(raw, server_hostname=parts.hostname),
        ):
            return True
    except ssl.SSLError as exc:
        return exc.reason in _NO_CLIENT_CERTIFICATE
    except OSError:
        return False


def http_status(url: str, timeout: float = 2.0, *, client_certificate_required: bool = False) -> int:
    """The HTTP status of ``GET url``; 0 when nothing answers. A server that requires client certificates
    cannot answer regctl's GET: for it (``client_certificate_required``), CLIENT_CERTIFICATE_REQUIRED when
    it answers the TLS handshake."""
    if client_certificate_required and url.startswith("https:"):
        return CLIENT_CERTIFICATE_REQUIRED if _tls_handshake(url, timeout) else 0
    try:
        with _opener(url).open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # URLError too
        return 0


def server_url(server: ServerConfig) -> str:
    """Where a process beside the server (the image's HEALTHCHECK) reaches it: ``http.addr`` with a wildcard
    host made loopback, over https when ``http.tls`` is set."""
    host, port = parse_addr(server.http.addr)
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    scheme = "https" if server.http.tls is not None else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def healthy(status: int) -> bool:
    """``GET /v2/``: 200, or 401 once auth is on (Distribution's advice for load-balancer checks); with
    mutual TLS, the refusal of a client without a certificate."""
    return status in (200, 401, CLIENT_CERTIFICATE_REQUIRED)


def count_repositories(base_url: str, timeout: float = 5.0) -> int | None:
    """The number of repositories, from ``GET /v2/_catalog`` and its ``Link`` pages; None when not allowed
    (auth) or not answering."""
    opener = _opener(base_url)
    url: str | None = f"{base_url}/v2/_catalog"
    count = 0
    while url is not None:
        try:
            with opener.open(url, timeout=timeout) as response:
                count += len(json.loads(response.read()).get("repositories") or [])
                link = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", response.headers.get("Link", ""))
        except (OSError, urllib.error.URLError, ValueError):
            return None
        url = None if link is None else base_url + link.group(1) if link.group(1).startswith("/") else link.group(1)
    return count


def directory_size(path: Path) -> int | None:
    """Bytes of the files under ``path`` (hard-linked files once), or None when it is not there."""
    if not path.is_dir():
        return None
    seen: set[tuple[int, int]] = set()
    total = 0
    for parent, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(parent, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def delete_directory(path: Path, reporter: Reporter) -> None:
    """``down --volumes`` for data in a host directory: delete it and everything in it."""
    if not path.exists():
        reporter.info(f"No data directory {path}: nothing to delete")
        return
    with reporter.step(f"Deleting data directory {path}"):
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise RegctlError(
                f"cannot delete data directory {path}: {exc.strerror} ({exc.filename})",
                "delete it as a user who may (the server may have written files as another user)",
            ) from None


def tail_lines(data: bytes, count: int | None) -> bytes:
    """The last ``count`` lines of ``data`` (all when None)."""
    if count is None:
        return data
    if count <= 0:
        return b""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:])
