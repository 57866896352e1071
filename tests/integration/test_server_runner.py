"""The multi-process runner (``regctl.registry.server.run``) in real subprocesses on loopback.

Most tests serve a stand-in app (PID, slow and crashing handlers) so they test the runner alone; the last
ones run the real ``python -m regctl serve``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0

STANDIN = """\
import asyncio, json, os, sys
from pathlib import Path

from aiohttp import web

from regctl.config.server import ServerConfig
from regctl.errors import RegctlError
from regctl.registry.server import run


def make_app(config):
    if os.environ.get("STANDIN_BROKEN"):
        raise RegctlError("storage root /nope is not writable", "fix storage.filesystem.rootdirectory")

    async def pid(request):
        return web.Response(text=str(os.getpid()))

    async def slow(request):
        Path(request.query["started"]).touch()
        await asyncio.sleep(float(request.query["seconds"]))
        return web.Response(text="done")

    async def crash(request):
        os._exit(3)

    app = web.Application()
    app.router.add_get("/pid", pid)
    app.router.add_get("/slow", slow)
    app.router.add_get("/crash", crash)
    return app


config = ServerConfig.model_validate(json.loads(sys.argv[1]))
try:
    code = run(config, int(sys.argv[2]), make_app, on_listening=lambda url: print(url, flush=True))
except RegctlError as exc:
    print(f"error: {exc.message}", file=sys.stderr)
    sys.exit(1)
sys.exit(code)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "REGCTL_"))}
    return {**env, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **extra}


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """One request on a new connection (urllib sends ``Connection: close``)."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Server:
    """A runner subprocess in its own session, so teardown can kill the master and its workers together."""

    def __init__(self, argv: list[str], stderr_path: Path, env: dict[str, str]) -> None:
        self.stderr_path = stderr_path
        with stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        self.url = ""

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def read_url(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().strip() if ready else ""
        assert line.startswith("http://"), f"no URL announced; stderr:\n{self.stderr}"
        self.url = line
        return line

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return self.proc.wait(STOP_TIMEOUT)

    def worker_pids(self, count: int) -> set[int]:
        """Ask /pid on fresh connections until ``count`` distinct workers have answered."""
        pids: set[int] = set()
        for _ in range(200):
            pids.add(int(get(f"{self.url}/pid")[1]))
            if len(pids) == count:
                return pids
        raise AssertionError(f"only saw workers {pids} in 200 connections")

    def wait_for_log(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while self.stderr.count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} not logged {count}x; stderr:\n{self.stderr}"
            time.sleep(0.05)

    def kill_all(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


StartStandin = Callable[..., Server]


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StartStandin]:
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    started: list[Server] = []

    def start(
        workers: int = 2, addr: str = "127.0.0.1:0", announce: bool = True, log: dict | None = None, **env: str
    ) -> Server:
        config = {"http": {"addr": addr}, "log": log or {"level": "info"}}
        server = Server(
            [sys.executable, str(script), json.dumps(config), str(workers)],
            tmp_path / f"stderr-{len(started)}.log",
            _env(**env),
        )
        started.append(server)
        if announce:
            server.read_url()
        return server

    yield start
    for server in started:
        server.kill_all()


# -- the stand-in app: the runner alone -------------------------------------------------------------------------
def test_both_workers_serve_on_the_real_port(standin: StartStandin) -> None:
    server = standin(workers=2)
    port = int(server.url.rsplit(":", 1)[1])
    assert port > 0  # http.addr asked for port 0: the announced URL has the real one
    pids = server.worker_pids(2)
    assert server.proc.pid not in pids
    assert server.stop() == 0
    assert f"msg=listening logger=regctl.server pid={server.proc.pid} url={server.url} workers=2" in server.stderr


@pytest.mark.parametrize(
    ("addr", "host"),
    [("localhost:0", "127.0.0.1"), ("[::1]:0", "[::1]")],
)
def test_address_forms(standin: StartStandin, addr: str, host: str) -> None:
    if host == "[::1]" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    server = standin(workers=1, addr=addr)
    assert server.url.startswith(f"http://{host}:")
    assert get(f"{server.url}/pid")[0] == 200
    assert server.stop() == 0


def _wait_until_started(marker: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not marker.exists():
        assert time.monotonic() < deadline, "the slow request never reached a worker"
        time.sleep(0.02)


def test_sigterm_lets_an_in_flight_request_finish(standin: StartStandin, tmp_path: Path) -> None:
    server = standin(workers=2)
    started = tmp_path / "slow-started"
    result: list[tuple[int, str]] = []
    client = threading.Thread(target=lambda: result.append(get(f"{server.url}/slow?seconds=2&started={started}")))
    client.start()
    _wait_until_started(started)

    server.signal(signal.SIGTERM)
    assert server.proc.wait(STOP_TIMEOUT) == 0
    client.join(STOP_TIMEOUT)
    assert result == [(200, "done")]
    assert "msg=stopping logger=regctl.server" in server.stderr
    assert "Traceback" not in server.stderr


def test_a_second_stop_signal_kills_the_workers(standin: StartStandin, tmp_path: Path) -> None:
    server = standin(workers=1)
    started = tmp_path / "slow-started"

    def request() -> None:
        with contextlib.suppress(urllib.error.URLError, ConnectionError):  # killed with its worker
            get(f"{server.url}/slow?seconds=60&started={started}")

    client = threading.Thread(target=request, daemon=True)
    client.start()
    _wait_until_started(started)

    server.signal(signal.SIGTERM)
    server.wait_for_log("msg=stopping")
    server.signal(signal.SIGINT)
    assert server.proc.wait(STOP_TIMEOUT) == 1  # the worker did not stop cleanly
    assert "second stop signal, killing workers" in server.stderr


def test_a_killed_worker_is_replaced(standin: StartStandin) -> None:
    server = standin(workers=2)
    before = server.worker_pids(2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    deadline = time.monotonic() + START_TIMEOUT
    seen: set[int] = set()
    while not seen - before:
        assert time.monotonic() < deadline, f"no replacement worker; stderr:\n{server.stderr}"
        # A connection the kernel had queued on the killed worker's socket fails.
        with contextlib.suppress(urllib.error.URLError, ConnectionError):
            seen.add(int(get(f"{server.url}/pid")[1]))
    assert victim not in seen
    assert server.proc.poll() is None
    assert f'worker exited unexpectedly, restarting it" logger=regctl.server pid={server.proc.pid} ' in server.stderr
    assert server.stop() == 0


def test_workers_that_keep_crashing_stop_the_server(standin: StartStandin) -> None:
    server = standin(workers=2)
    for _ in range(100):
        if server.proc.poll() is not None:
            break
        with contextlib.suppress(urllib.error.URLError, ConnectionError):  # the worker dies mid-request
            get(f"{server.url}/crash", timeout=2)
        time.sleep(0.05)
    assert server.proc.wait(STOP_TIMEOUT) == 1
    assert server.stderr.endswith("error: workers keep exiting (5 in 60 s), giving up\n")


def test_sighup_is_forwarded_and_workers_keep_serving(standin: StartStandin) -> None:
    server = standin(workers=2)
    before = server.worker_pids(2)
    server.signal(signal.SIGHUP)
    server.wait_for_log('msg="reload requested, nothing to reload"', count=2)
    assert server.worker_pids(2) == before
    assert server.stop() == 0


def test_json_logs_carry_the_configured_fields(standin: StartStandin) -> None:
    server = standin(workers=1, log={"formatter": "json", "fields": {"service": "registry"}})
    get(f"{server.url}/pid")
    assert server.stop() == 0
    entries = [json.loads(line) for line in server.stderr.splitlines()]
    listening = next(entry for entry in entries if entry["msg"] == "listening")
    assert listening["url"] == server.url
    assert listening["workers"] == 1
    access = next(entry for entry in entries if entry["logger"] == "aiohttp.access")
    assert access["first_request_line"] == "GET /pid HTTP/1.1"
    assert access["response_status"] == 200
    assert {entry["service"] for entry in entries} == {"registry"}
    assert {entry["level"] for entry in entries} == {"info"}


def test_access_log_can_be_disabled(standin: StartStandin) -> None:
    server = standin(workers=1, log={"accesslog": {"disabled": True}})
    get(f"{server.url}/pid")
    assert server.stop() == 0
    assert "msg=listening" in server.stderr
    assert "aiohttp.access" not in server.stderr


def test_a_worker_startup_error_is_raised_by_run(standin: StartStandin) -> None:
    server = standin(workers=2, announce=False, STANDIN_BROKEN="1")
    assert server.proc.wait(STOP_TIMEOUT) == 1
    assert server.stderr == "error: storage root /nope is not writable\n"


# -- the real command ----------------------------------------------------------------------------------------------
@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str) -> Server:
        argv = [sys.executable, "-m", "regctl", "serve", *args]
        server = Server(argv, tmp_path / f"serve-{len(started)}.log", _env())
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill_all()


@pytest.mark.parametrize("reuseport", [False, True], ids=["plain", "reuseport"])
def test_port_taken_is_one_clean_line(serve: Callable[..., Server], tmp_path: Path, reuseport: bool) -> None:
    # A listener with SO_REUSEPORT (another regctl's workers) must be detected too.
    with socket.socket() as holder:
        if reuseport:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = serve("--addr", f"127.0.0.1:{port}", "--root", str(tmp_path / "data"))
        assert server.proc.wait(STOP_TIMEOUT) == 1
    assert server.stderr == (
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use\n"
        "Hint: stop the other server on that port, or choose another with --addr / http.addr\n"
    )


def test_regctl_serve_answers_and_stops_cleanly(
    serve: Callable[..., Server], tmp_path: Path, free_port: Callable[..., int]
) -> None:
    port = free_port()
    server = serve("--addr", f"127.0.0.1:{port}", "--root", str(tmp_path / "data"), "--workers", "1")
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert server.proc.poll() is None, f"regctl serve exited; stderr:\n{server.stderr}"
        try:
            status, body = get(f"http://127.0.0.1:{port}/v2/")
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, f"regctl serve never answered; stderr:\n{server.stderr}"
            time.sleep(0.05)
    assert (status, json.loads(body)) == (200, {})
    assert server.stop() == 0
    assert f"regctl serve: listening on http://127.0.0.1:{port} (1 worker)\n" in server.stderr
