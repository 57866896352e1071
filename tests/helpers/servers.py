"""Registry servers as subprocesses on loopback: regctl or CNCF Distribution (Debian ``docker-registry``).

Both read the same Distribution ``config.yml``, so one :class:`RegistryProcess` drives either kind and a test
can serve one storage root with one kind, stop it, and serve the same root with the other.

Each server's stdout and stderr go to a log file next to its config. :func:`log_marks` and
:func:`log_sections` let a pytest hook attach what a server logged during a failed test to the report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self

import yaml

KINDS = ("regctl", "distribution")
REPO_ROOT = Path(__file__).resolve().parents[2]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 200

# Every process created this session, in order; the failure-report hook reads their logs.
_ALL: list[RegistryProcess] = []


class ServerStartError(RuntimeError):
    """The server exited or did not answer ``GET /v2/`` in time; the message ends with its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago (the caller retries if it is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_UNVERIFIED = _unverified_context()


def _no_proxy_opener(context: ssl.SSLContext | None = None) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


# Extra configuration: a mapping merged into config.yml, or a function of the server (called once its port is
# known, e.g. for a token realm URL that names the port).
ExtraConfig = Mapping[str, Any] | Callable[["RegistryProcess"], Mapping[str, Any]]


def merge(base: dict, extra: Mapping[str, Any]) -> dict:
    """``extra`` merged into ``base`` (nested mappings key by key; anything else replaces); returns ``base``."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


class RegistryProcess:
    """One registry server (``kind`` is ``regctl`` or ``distribution``) serving ``root``.

    Plain HTTP unless ``extra`` sets ``http.tls`` (then ``url`` is ``https://``); ``extra`` also carries
    ``auth`` and regctl's ``tokenserver``. ``port`` fixes the port (for a certificate or an instance that
    names it); by default a free one is picked at every start. ``env`` is added to the server's environment
    (``REGISTRY_*`` overrides). ``workdir`` holds ``config.yml`` and ``server.log``; it survives restarts, so
    the log covers every run.
    """

    def __init__(
        self,
        kind: str,
        root: Path,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        log_level: str = "warn",
        port: int = 0,
        extra: ExtraConfig | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown registry kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.root = Path(root)
        self.workdir = Path(workdir)
        self.host = host
        self.log_level = log_level
        self.fixed_port = port
        self.port = port
        self.extra = extra
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._run_offset = 0
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        _ALL.append(self)

    # -- addresses -------------------------------------------------------------------------------------
    @property
    def addr(self) -> str:
        """``host:port`` as it appears in image references (``127.0.0.1:5000/repo:tag``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tls(self) -> bool:
        """Whether the server speaks HTTPS (``http.tls`` in its configuration)."""
        return bool(self.config().get("http", {}).get("tls"))

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.addr}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RegistryProcess {self.kind} {self.addr} root={self.root} {state}>"

    # -- lifecycle -------------------------------------------------------------------------------------
    def config(self) -> dict:
        """The Distribution ``config.yml`` both kinds are started with."""
        config = {
            "version": "0.1",
            "log": {"level": self.log_level, "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root)}, "delete": {"enabled": True}},
            "http": {"addr": self.addr},
        }
        extra = self.extra(self) if callable(self.extra) else self.extra
        return merge(config, extra or {})

    def command(self) -> list[str]:
        if self.kind == "regctl":
            return [sys.executable, "-m", "regctl", "serve", "--config", str(self.config_path)]
        return ["docker-registry", "serve", str(self.config_path)]

    def _env(self) -> dict[str, str]:
        # REGISTRY_* variables override config keys in both servers; never let the caller's leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env | self.extra_env

    def start(self, timeout: float = _START_TIMEOUT) -> Self:
        """Start the server and wait until ``GET /v2/`` answers; retry on another port if ours was taken."""
        __tracebackhide__ = True
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = self.fixed_port or free_port(self.host)
            self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
            self._run_offset = self.log_size()  # this run's output starts here
            with self.log_path.open("ab") as log:
                log.write(f"=== {' '.join(self.command())} (addr {self.addr})\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    self.command(),
                    cwd=REPO_ROOT,
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                self._wait_ready(timeout)
                return self
            except ServerStartError as exc:
                self.stop()
                port_taken = "address already in use" in self.log_text(self._run_offset).lower()
                if port_taken and attempt < _PORT_ATTEMPTS and not self.fixed_port:
                    continue
                raise exc from None
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float) -> None:
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        # Readiness only: whether the certificate verifies is for the tests to check, with their own CA.
        opener = _no_proxy_opener(_UNVERIFIED if self.tls else None)
        last_error = "no answer yet"
        while True:
            assert self.proc is not None
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(
                    f"{self.kind} server exited with code {rc} before answering GET /v2/\n"
                    f"command: {' '.join(self.command())}\n"
                    f"--- {self.log_path} (tail) ---\n{self.log_tail(self._run_offset, lines=30)}"
                )
            try:
                with opener.open(f"{self.url}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last_error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # auth configured: the server is up
                    return
                last_error = f"HTTP {exc.code}"
            except (OSError, urllib.error.URLError) as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.kind} server did not answer GET {self.url}/v2/ within {timeout:.0f}s "
                    f"(last: {last_error})\ncommand: {' '.join(self.command())}\n"
                    f"--- {self.log_path} (tail) ---\n{self.log_tail(self._run_offset, lines=30)}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit code (None if never started)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logs ------------------------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, offset: int = 0) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
        text = self.log_text(offset).splitlines()
        skipped = len(text) - lines
        head = [f"[... {skipped} earlier lines in {self.log_path}]"] if skipped > 0 else []
        return "\n".join(head + text[-lines:])


class RegistryFactory:
    """Starts registries of either kind under one base directory and stops whatever is left at the end."""

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self._procs: list[RegistryProcess] = []
        self._count = 0

    def create(self, kind: str, root: Path | None = None, **kwargs: object) -> RegistryProcess:
        """A stopped server; ``root`` defaults to a fresh directory. Call ``.start()`` or use ``with``."""
        self._count += 1
        workdir = self.base / f"{self._count:02d}-{kind}"
        proc = RegistryProcess(kind, root or workdir / "root", workdir, **kwargs)  # type: ignore[arg-type]
        self._procs.append(proc)
        return proc

    def start(self, kind: str, root: Path | None = None, **kwargs: object) -> RegistryProcess:
        """A running server on ``root`` (fresh if omitted)."""
        return self.create(kind, root, **kwargs).start()

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            with contextlib.suppress(Exception):
                proc.stop()


def log_marks() -> dict[int, int]:
    """Current log size of every known server, keyed by ``id()``: taken when a test starts."""
    return {id(p): p.log_size() for p in _ALL}


def log_sections(marks: dict[int, int]) -> list[tuple[str, str]]:
    """(title, text) for every server that logged something since ``marks`` was taken."""
    sections = []
    for proc in _ALL:
        offset = marks.get(id(proc), 0)
        if proc.log_size() > offset:
            sections.append((f"{proc.kind} server log ({proc.addr}, {proc.log_path})", proc.log_tail(offset)))
    return sections
