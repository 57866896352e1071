"""The process runtime: ``regctl serve`` in the background on this host, no Docker needed.

``up`` starts ``python -m regctl serve run/config.yml`` detached (its own session, so it outlives the
terminal), with stdout and stderr appended to ``run/regctl.log`` and its pid in ``run/regctl.pid``.
``run/config.yml`` is a copy of ``rendered/process-config.yml`` taken at start: comparing the two tells
whether the running server is up to date, since ``rendered/`` is rewritten by every render.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import yaml

import regctl
from regctl.deploy.files import atomic_write
from regctl.deploy.instance import InstanceConfig, InstanceLayout
from regctl.deploy.progress import Reporter
from regctl.deploy.render import render_instance
from regctl.deploy.runtime import (
    READY_TIMEOUT,
    Status,
    UpResult,
    check_port_free,
    count_repositories,
    delete_directory,
    directory_size,
    healthy,
    http_status,
    local_url,
    registry_url,
    tail_lines,
)
from regctl.errors import RegctlError

# The server lets in-flight requests finish for 30 s, then kills its workers 10 s later (registry/server.py).
STOP_TIMEOUT = 45.0
_LOG_TAIL = 20
_TAIL_BLOCK = 64 * 1024


class ProcessRuntime:
    name = "process"

    def __init__(self, config: InstanceConfig, layout: InstanceLayout, reporter: Reporter) -> None:
        self.config = config
        self.layout = layout
        self.reporter = reporter

    @property
    def _started_config(self) -> Path:
        """The configuration the running server was started with."""
        return self.layout.run / "config.yml"

    # -- up ------------------------------------------------------------------------------------------------
    def up(self) -> UpResult:
        url = registry_url(self.config)
        render_instance(self.config, self.layout, self.config.image.ref)
        wanted = self.layout.process_config.read_text()
        pid = self.running_pid()
        if pid is not None:
            if self._started_text() == wanted:
                return UpResult(changed=False, url=url)
            # A new address that is taken must not cost the running server its life.
            if _server_setting(wanted, "http", "addr") != _server_setting(self._started_text(), "http", "addr"):
                check_port_free(self.config.bind, self.config.port)
            self._check_data_dir(wanted)
            with self.reporter.step(f"Stopping the server (pid {pid}): its configuration changed"):
                self._stop(pid)
        self._start(wanted)
        return UpResult(changed=True, url=url)

    def _start(self, config_text: str) -> None:
        check_port_free(self.config.bind, self.config.port)
        self._check_data_dir(config_text)
        self.layout.run.mkdir(parents=True, exist_ok=True)
        atomic_write(self._started_config, config_text, 0o600)  # it holds the HTTP secret
        # The configuration is the rendered file alone, as in the container: REGISTRY_* variables of this
        # shell would silently override it, and REGCTL_SERVE_* would add to it.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "REGCTL_SERVE_"))}
        env["PYTHONUNBUFFERED"] = "1"
        # The server must import this very regctl; from a source tree that is not installed, only this path
        # finds it (an installed one is on the default path: its site-packages is not put in front of stdlib).
        package_root = Path(regctl.__file__).resolve().parents[1]
        if package_root.name not in ("site-packages", "dist-packages"):
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "regctl", "serve", str(self._started_config.absolute())]
        with self.reporter.step(f"Starting regctl serve on {self.config.bind}:{self.config.port}"):
            with self.layout.log_file.open("ab") as log:
                stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
                log.write(f"--- regctl up {stamp}: {' '.join(command)}\n".encode())
                log.flush()
                start = log.tell()
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.layout.root,
                    env=env,
                    start_new_session=True,  # no SIGHUP/SIGINT from this terminal; outlives `regctl up`
                )
            atomic_write(self.layout.pid_file, f"{process.pid}\n", 0o644)
            self._wait_ready(process, start)

    def _check_data_dir(self, config_text: str) -> None:
        """The filesystem root the server will write to exists (created now) and is writable by us."""
        root = _server_setting(config_text, "storage", "filesystem", "rootdirectory")
        if root is None:
            return
        path = Path(root)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegctlError(
                f"data directory {path} is not writable: cannot create it ({exc.strerror})",
                "fix storage.path in regctl.yaml, or create the directory and give it to this user",
            ) from None
        if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
            raise RegctlError(
                f"data directory {path} is not writable by uid {os.geteuid()}",
                f"give it to this user (chown -R {os.geteuid()} {path}), or fix storage.path in regctl.yaml",
            )

    def _wait_ready(self, process: subprocess.Popen[bytes], log_start: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not healthy(self._probe()):
            code = process.poll()
            if code is not None or time.monotonic() > deadline:
                if code is None:
                    self._stop(process.pid)
                self.layout.pid_file.unlink(missing_ok=True)
                what = f"exited at start (exit code {code})" if code is not None else "did not answer in time"
                raise RegctlError(
                    f"regctl serve {what}; its last log lines:\n{self._log_since(log_start)}",
                    f"fix the cause above, then run `regctl up` again (the whole log: {self.layout.log_file})",
                )
            time.sleep(0.2)

    def _log_since(self, offset: int) -> str:
        with self.layout.log_file.open("rb") as log:
            log.seek(offset)
            text = tail_lines(log.read(), _LOG_TAIL).decode(errors="replace").rstrip()
        return text or "(no output)"

    # -- the rest ------------------------------------------------------------------------------------------
    def down(self, volumes: bool) -> None:
        pid = self.running_pid()
        if pid is None:
            self.reporter.info("The server is not running: nothing to stop")
        else:
            with self.reporter.step(f"Stopping the server (pid {pid})"):
                self._stop(pid)
        self.layout.pid_file.unlink(missing_ok=True)
        self._started_config.unlink(missing_ok=True)
        if volumes:
            delete_directory(self._data_dir(), self.reporter)

    def _stop(self, pid: int) -> None:
        """SIGTERM (requests in flight finish), then SIGKILL for the whole session if it hangs."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # the server leads its own session: workers too
        self.layout.pid_file.unlink(missing_ok=True)

    def status(self) -> Status:
        pid = self.running_pid()
        url = registry_url(self.config)
        size = directory_size(self._data_dir())
        if pid is None:
            return Status("process", "stopped", None, url, None, None, size, None, None)
        base = local_url(self.config)
        started = datetime.datetime.fromtimestamp(self.layout.pid_file.stat().st_mtime, datetime.UTC)
        return Status(
            runtime="process",
            state="running",
            health="healthy" if healthy(self._probe()) else "unhealthy",
            url=url,
            image=None,
            started_at=started,
            storage_bytes=size,
            repositories=count_repositories(base),
            where=f"pid {pid}",
        )

    def logs(self, follow: bool, tail: int | None) -> Iterator[bytes]:
        path = self.layout.log_file
        if not path.exists():
            raise RegctlError(f"no log yet ({path})", "start the registry with `regctl up`")
        with path.open("rb") as log:
            yield _read_tail(log, tail)
            while follow:
                chunk = log.read()
                if chunk:
                    yield chunk
                elif self.running_pid() is None:
                    return
                else:
                    time.sleep(0.3)

    def restart(self) -> None:
        pid = self.running_pid()
        if pid is None:
            raise RegctlError("the server is not running", "start it with `regctl up`")
        config_text = self._started_text() or self.layout.process_config.read_text()
        with self.reporter.step(f"Stopping the server (pid {pid})"):
            self._stop(pid)
        self._start(config_text)

    def data_location(self) -> str:
        return f"data directory {self._data_dir()}"

    # -- helpers -------------------------------------------------------------------------------------------
    def _probe(self) -> int:
        """``GET /v2/`` of the running server; with client certificates required, its TLS handshake."""
        url = f"{local_url(self.config)}/v2/"
        return http_status(url, client_certificate_required=bool(self.config.tls.clientcas))

    def running_pid(self) -> int | None:
        """The pid in run/regctl.pid when that process is alive and is a regctl server (not a recycled pid)."""
        try:
            pid = int(self.layout.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _alive(pid):
            return None
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"regctl" not in cmdline or b"serve" not in cmdline:
                return None
        return pid

    def _started_text(self) -> str | None:
        with contextlib.suppress(OSError):
            return self._started_config.read_text()
        return None

    def _data_dir(self) -> Path:
        """The server's data directory, from the configuration it runs with (or would run with)."""
        for path in (self._started_config, self.layout.process_config):
            with contextlib.suppress(OSError):
                root = _server_setting(path.read_text(), "storage", "filesystem", "rootdirectory")
                if root:
                    return Path(root)
        return self.layout.data.absolute()


def _server_setting(config_text: str | None, *keys: str) -> str | None:
    """One value of a server config.yml text (``http``, ``addr``), or None."""
    node = yaml.safe_load(config_text or "") or {}
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return None if node is None else str(node)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: exists and is not a zombie waiting for its parent."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _read_tail(log: BinaryIO, count: int | None) -> bytes:
    """The last ``count`` lines of the open file ``log`` (all when None), read from the end in blocks; leaves
    the file positioned at its end."""
    end = log.seek(0, os.SEEK_END)
    if count is None:
        log.seek(0)
        return log.read()
    start = end
    while start > 0:
        start = max(0, start - _TAIL_BLOCK)
        log.seek(start)
        if log.read(end - start).count(b"\n") > count:
            break
    log.seek(start)
    return tail_lines(log.read(end - start), count)
