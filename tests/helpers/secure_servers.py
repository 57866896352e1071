"""Servers with TLS and/or auth on loopback: ``python -m regctl serve`` or Distribution, each from a config dict.

``helpers.servers`` drives plain-HTTP registries for the API tests; these take any config (``http.tls``,
``auth``, ``tokenserver``) and are ready once the port accepts connections, whatever the auth answers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from helpers.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


class ServerProcess:
    """One server in its own session, logging to ``workdir/server.log``; ``addr`` is 127.0.0.1:<port>."""

    def __init__(self, kind: str, config: dict, workdir: Path, *, workers: int = 1, port: int | None = None) -> None:
        self.kind = kind
        self.port = port or free_port()
        self.addr = f"127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "server.log"
        path = workdir / "config.yml"
        config = {"version": "0.1", "log": {"level": "info", "accesslog": {"disabled": True}},
                  "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
                  **config}
        config["http"] = {**config.get("http", {}), "addr": self.addr}
        path.write_text(yaml.safe_dump(config))
        if kind == "regctl":
            argv = [sys.executable, "-m", "regctl", "serve", "--workers", str(workers), str(path)]
        else:
            argv = ["docker-registry", "serve", str(path)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "REGCTL_"))}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, env={**env, "PYTHONPATH": str(REPO_ROOT), "NO_COLOR": "1"},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc.poll() is None, f"{self.kind} exited with {self.proc.returncode}:\n{self.output}"
            assert time.monotonic() < deadline, f"{self.kind} did not listen on {self.addr}:\n{self.output}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class ServerSet:
    """Starts servers under ``base`` and stops all of them at the end (the fixture's teardown)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[ServerProcess] = []

    def start(self, kind: str, config: dict, *, workers: int = 1, wait: bool = True,
              port: int | None = None) -> ServerProcess:
        """``port``: when the config must name it in advance (a token realm); default: a free one."""
        server = ServerProcess(kind, config, self.base / f"{len(self.started):02d}-{kind}", workers=workers, port=port)
        self.started.append(server)
        return server.wait_ready() if wait else server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()
